import assert from 'node:assert/strict';
import { test } from 'node:test';
import { closeCodeOf, parseServerFrames, rawClient, startHost } from './helpers.ts';

test('echo over a raw client, then a protocol error closes with 1002', async () => {
  const t = await startHost();
  try {
    const c = await rawClient(t.port);
    assert.match(c.response, /^HTTP\/1\.1 101 /);
    c.frame(0x1, 'hi');
    c.frame(0x3, ''); // reserved opcode
    const frames = parseServerFrames(await c.closed());
    assert.equal(frames[0]?.payload.toString(), 'hi');
    assert.equal(frames[1]?.opcode, 0x8);
    assert.equal(closeCodeOf(frames[1]!.payload), 1002);
  } finally {
    await t.close();
  }
});
