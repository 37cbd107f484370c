import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createHost, isWsmodError } from 'wsmod';
import { connect } from 'wsmod/client';
import { createLogger } from 'wsmod/log';
import { loadPlugin } from 'wsmod/plugin';

/** The project folder: the plugin path is resolved from here, as wsmod.config.yaml does. */
const baseDir = fileURLToPath(new URL('..', import.meta.url));

/** Loads src/plugin.ts with `options` and serves it on /hello, on a free port. */
async function start(options: unknown) {
  const plugin = await loadPlugin('./src/plugin.ts', { baseDir, options });
  const host = createHost({ routes: [{ path: '/hello', plugin }], logger: createLogger('warn') });
  const { port } = await host.listen(0, '127.0.0.1');
  return { url: `ws://127.0.0.1:${port}/hello`, close: () => host.close({ deadline: 2000 }) };
}

test('greets a new session, echoes text with the greeting and binary as it is', async () => {
  const server = await start({ greeting: 'Hi' });
  try {
    const client = await connect(server.url);
    assert.equal((await client.next()).text(), 'Hi!');

    client.send('world');
    const text = await client.next();
    assert.equal(text.isBinary, false);
    assert.equal(text.text(), 'Hi, world');

    client.send(Buffer.from([1, 2, 3]));
    const binary = await client.next();
    assert.equal(binary.isBinary, true);
    assert.deepEqual([...binary.data], [1, 2, 3]);

    assert.equal((await client.close(1000)).code, 1000);
  } finally {
    await server.close();
  }
});

test('the greeting defaults to "Hello"', async () => {
  const server = await start({});
  try {
    const client = await connect(server.url);
    assert.equal((await client.next()).text(), 'Hello!');
    await client.close();
  } finally {
    await server.close();
  }
});

test('a bad greeting is refused when the plugin loads', async () => {
  await assert.rejects(
    loadPlugin('./src/plugin.ts', { baseDir, options: { greeting: 42 } }),
    (err: unknown) => isWsmodError(err, 'WSMOD_ERR_PLUGIN_INVALID') && /greeting/.test(err.message),
  );
});
