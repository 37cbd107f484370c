// Faults stay with their plugin: an asynchronous throw, a floating rejection or an unheard 'error'
// event started in any hook of an inline or a worker plugin closes only that session (1011) and is
// logged with the hook that started it; a bystander on another route keeps echoing and the host keeps
// listening. The host runs in a child process (test/fixtures/fault-host.ts): node:test counts any
// uncaught exception in its own process as a failure.
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { until } from './helpers.ts';

const HOST = fileURLToPath(new URL('./fixtures/fault-host.ts', import.meta.url));
const KINDS = ['timer', 'rejection', 'emitter'] as const;
const ROUTES = ['/fault', '/fault-worker'] as const;

interface LogLine {
  readonly level: string;
  readonly msg?: string;
  readonly hook?: string;
  readonly plugin?: string;
  readonly err?: string;
  readonly kind?: string;
}

let child: ChildProcessWithoutNullStreams;
let base = '';
const logs: LogLine[] = [];

before(async () => {
  child = spawn(process.execPath, ['--import', 'tsx', HOST], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = createInterface({ input: child.stdout });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`fault host exited (${String(code)}): ${stderr}`)));
    lines.on('line', (text) => {
      const parsed = JSON.parse(text) as LogLine & { port?: number };
      if (parsed.port !== undefined) resolve(parsed.port);
      else logs.push(parsed);
    });
  });
  base = `ws://127.0.0.1:${port}`;
});

after(async () => {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
});

/** A ws client with its messages queued and its close code awaited. */
function open(path: string): Promise<{ ws: WebSocket; closed: Promise<number>; next(): Promise<string> }> {
  const ws = new WebSocket(`${base}${path}`);
  const queue: string[] = [];
  const waiting: Array<(m: string) => void> = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const text = isBinary ? `<${data.length} bytes>` : data.toString();
    const w = waiting.shift();
    if (w !== undefined) w(text);
    else queue.push(text);
  });
  const closed = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)));
  const next = (): Promise<string> => {
    const m = queue.shift();
    return m !== undefined ? Promise.resolve(m) : new Promise((resolve) => waiting.push(resolve));
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, closed, next }));
    ws.once('error', reject);
  });
}

async function echoes(client: { ws: WebSocket; next(): Promise<string> }, text: string): Promise<void> {
  client.ws.send(text);
  assert.equal(await client.next(), text);
}

/** Waits for the error line that blames `hook` for a fault of `kind`, and returns it. */
async function blamed(hook: string, kind: string): Promise<LogLine> {
  const match = (l: LogLine): boolean => l.level === 'error' && l.hook === hook && (l.err ?? '').startsWith(`${kind} fault started in ${hook}`);
  await until(() => logs.some(match), 10_000, `a log line blaming ${hook} for a ${kind} fault`);
  return logs.find(match)!;
}

for (const route of ROUTES) {
  describe(`asynchronous faults in a plugin on ${route}`, () => {
    for (const kind of KINDS) {
      test(`${kind}: onMessage, onOpen and onDrain close only their session with 1011; onUpgrade and onClose are logged`, async () => {
        const bystander = await open('/echo');
        const sameRoute = await open(route);

        const inMessage = await open(route);
        inMessage.ws.send(`fault:${kind}`);
        assert.equal(await inMessage.closed, 1011);
        assert.equal((await blamed('onMessage', kind)).plugin, 'faulty');

        const inOpen = await open(`${route}?open=${kind}`);
        assert.equal(await inOpen.closed, 1011);
        await blamed('onOpen', kind);

        const inDrain = await open(route);
        inDrain.ws.send(`drain:${kind}`);
        assert.equal(await inDrain.next(), `<${16 * 1024 * 1024} bytes>`);
        assert.equal(await inDrain.closed, 1011);
        await blamed('onDrain', kind);

        // No session yet in onUpgrade: the fault is logged against the plugin, the connection is served.
        const inUpgrade = await open(`${route}?upgrade=${kind}`);
        await blamed('onUpgrade', kind);
        await echoes(inUpgrade, 'served anyway');
        inUpgrade.ws.close(1000);
        assert.equal(await inUpgrade.closed, 1000);

        const inClose = await open(`${route}?close=${kind}`);
        inClose.ws.close(1000);
        assert.equal(await inClose.closed, 1000);
        await blamed('onClose', kind);

        await echoes(bystander, `bystander after ${kind}`);
        await echoes(sameRoute, `same route after ${kind}`);
        const fresh = await open(route);
        await echoes(fresh, 'the host still accepts');
        for (const c of [bystander, sameRoute, fresh]) c.ws.close(1000);
        await Promise.all([bystander.closed, sameRoute.closed, fresh.closed]);
      });
    }

    test('a fault no hook started is logged as unattributed; every session stays open', async () => {
      const bystander = await open('/echo');
      const client = await open(route);
      const before = logs.filter((l) => /outside any plugin hook/.test(l.msg ?? '')).length;
      client.ws.send('unattributed');
      await until(() => logs.filter((l) => /outside any plugin hook/.test(l.msg ?? '')).length > before, 10_000, 'the unattributed fault logged');
      await echoes(client, 'still open');
      await echoes(bystander, 'bystander still open');
      client.ws.close(1000);
      bystander.ws.close(1000);
      await Promise.all([client.closed, bystander.closed]);
    });
  });
}
