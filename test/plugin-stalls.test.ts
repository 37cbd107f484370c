// A plugin hook that blocks the event loop is found out: the stall watch reports the plugin and the
// hook (with the advice to use worker isolation), counts every stall and logs at most once a minute
// per hook. Nothing here measures time; the busy loop only has to outlast the threshold by far.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { definePlugin } from '../src/plugin/api.ts';
import { faultCounts } from '../src/plugin/runtime.ts';
import { STALL_THRESHOLD_MS } from '../src/plugin/stall-watch.ts';
import { startHost, until } from './helpers.ts';

function busy(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // a plugin doing slow synchronous work
  }
}

const blocker = definePlugin({
  name: 'blocker',
  apiVersion: 1,
  onMessage(session, data) {
    if (data.toString() === 'block') busy(STALL_THRESHOLD_MS * 5);
    session.send(data);
  },
});

function roundTrip(ws: WebSocket, text: string): Promise<string> {
  return new Promise((resolve) => {
    ws.once('message', (data: Buffer) => resolve(data.toString()));
    ws.send(text);
  });
}

test('a hook that blocks the event loop is logged with its plugin and hook, counted, and logged once a minute at most', async () => {
  const t = await startHost([{ path: '/b', plugin: blocker }]);
  try {
    const ws = new WebSocket(`${t.base}/b`);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    assert.equal(await roundTrip(ws, 'quick'), 'quick');
    const before = faultCounts.stalls;
    assert.equal(await roundTrip(ws, 'block'), 'block');
    const stalls = (): Array<{ level: string; obj: object; msg?: string }> =>
      t.log.entries.filter((e) => e.level === 'warn' && /blocked the event loop/.test(e.msg ?? ''));
    await until(() => stalls().length === 1, 10_000, 'the stall reported');
    const entry = stalls()[0]!;
    assert.equal((entry.obj as { plugin?: string }).plugin, 'blocker');
    assert.equal((entry.obj as { hook?: string }).hook, 'onMessage');
    assert.ok(((entry.obj as { blockedMs?: number }).blockedMs ?? 0) >= STALL_THRESHOLD_MS);
    assert.match(entry.msg ?? '', /isolation: worker/);
    assert.equal(faultCounts.stalls, before + 1);

    // A second stall of the same hook is counted but not logged again within the minute.
    assert.equal(await roundTrip(ws, 'block'), 'block');
    await until(() => faultCounts.stalls === before + 2, 10_000, 'the second stall counted');
    assert.equal(stalls().length, 1);
    // Quick messages are no stall.
    for (let i = 0; i < 20; i++) assert.equal(await roundTrip(ws, `q${i}`), `q${i}`);
    assert.equal(faultCounts.stalls, before + 2);
    ws.close();
  } finally {
    await t.close();
  }
});
