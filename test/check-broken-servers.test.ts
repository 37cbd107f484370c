// `wsmod check` is only worth something if it is honest: a correct server passes, and a server with one
// deliberate defect fails exactly the cases that probe that behaviour — and still passes the others.
// The servers here are test/peers/mini-server.ts, an independent from-scratch implementation on
// node:net (it shares no code with wsmod's src/ nor with the ws package).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ALL_CASES } from '../src/check/catalog.ts';
import { runCases, selectCases } from '../src/check/runner.ts';
import type { CaseResult, CloseVerdict, Verdict } from '../src/check/types.ts';
import { type Defects, startMiniServer } from './peers/mini-server.ts';

/** Runs exactly these case ids against a mini server with the given defects; results by id. */
async function runAgainst(defects: Defects, ids: readonly string[]): Promise<Map<string, CaseResult>> {
  const cases = selectCases(ALL_CASES, ids);
  assert.deepEqual(
    cases.map((c) => c.id).sort(),
    [...ids].sort(),
    'every requested case id exists in the catalogue',
  );
  const server = await startMiniServer(defects);
  try {
    const results = await runCases(server.url, cases);
    return new Map(results.map((r) => [r.id, r]));
  } finally {
    await server.close();
  }
}

/** The reason a verdict was what it was, for assertion messages. */
function explain(r: CaseResult): string {
  return [
    `${r.id}: verdict ${r.verdict} (behavior ${r.behavior}, behaviorClose ${r.behaviorClose})`,
    `  result: ${r.result}`,
    `  resultClose: ${r.resultClose}`,
    `  observed: ${JSON.stringify(r.observed)}`,
    `  closedByMe ${r.closedByMe}, droppedByMe ${r.droppedByMe}, wasClean ${r.wasClean}, remote close ${r.remoteCloseCode}`,
    ...r.notes.map((n) => `  note: ${n}`),
  ].join('\n');
}

function get(results: Map<string, CaseResult>, id: string): CaseResult {
  const r = results.get(id);
  assert.ok(r !== undefined, `no result for case ${id}`);
  return r;
}

function assertVerdict(results: Map<string, CaseResult>, id: string, allowed: readonly Verdict[], context: string): CaseResult {
  const r = get(results, id);
  assert.ok(allowed.includes(r.verdict), `${context}: expected ${allowed.join(' or ')}\n${explain(r)}`);
  return r;
}

const passes = (results: Map<string, CaseResult>, ids: readonly string[], context: string): void => {
  for (const id of ids) assertVerdict(results, id, ['OK'], context);
};

const fails = (results: Map<string, CaseResult>, ids: readonly string[], context: string): void => {
  for (const id of ids) assertVerdict(results, id, ['FAILED'], context);
};

test('wsmod check judges a correct server and deliberately broken ones honestly', { concurrency: true }, async (t) => {
  await Promise.all([
    t.test('a correct server passes framing, ping, RSV, opcode, fragmentation, UTF-8 and close cases', async () => {
      const ids = [
        '1.1.1', '1.1.8', '1.2.1', '1.2.6',
        '2.1', '2.2', '2.3', '2.5',
        '3.1', '3.2', '3.4',
        '4.1.1', '4.2.3',
        '5.1', '5.3', '5.6', '5.9', '5.18',
        '6.2.2', '6.2.3', '6.3.1', '6.3.2', '6.4.1', '6.4.4', '6.6.1', '6.11.5', '6.12.1',
        '7.1.1', '7.3.1', '7.3.2', '7.3.6', '7.5.1', '7.7.1', '7.9.1',
      ];
      const results = await runAgainst({}, ids);
      // The mini server fails fast on invalid UTF-8 (it validates payload octets as they arrive), so
      // 6.4.x is OK, not merely NON-STRICT.
      passes(results, ids, 'correct server');
      // And the failures it signals carry the right codes.
      for (const id of ['2.5', '3.1', '4.1.1', '5.1', '5.9', '7.3.2', '7.9.1']) assert.equal(get(results, id).remoteCloseCode, 1002, id);
      for (const id of ['6.3.1', '6.4.1', '6.12.1', '7.5.1']) assert.equal(get(results, id).remoteCloseCode, 1007, id);
    }),

    t.test('a correct server passes 3.7 (a close frame with RSV = 7 is failed with 1002)', async () => {
      const results = await runAgainst({}, ['3.7']);
      passes(results, ['3.7'], 'correct server');
    }),

    t.test('noUtf8Validation: invalid UTF-8 text comes back instead of a 1007 → the 6.x invalid cases FAIL', async () => {
      const invalid = ['6.3.1', '6.3.2', '6.4.1', '6.6.1', '6.8.1', '6.11.5', '6.12.1'];
      const unrelated = ['1.1.1', '2.2', '3.1', '5.3', '6.2.1', '6.2.3', '6.5.5'];
      const results = await runAgainst({ noUtf8Validation: true }, [...invalid, ...unrelated]);
      fails(results, invalid, 'noUtf8Validation');
      passes(results, unrelated, 'noUtf8Validation (unrelated case)');
    }),

    t.test('acceptRsv: frames with RSV bits are processed → 3.1–3.7 FAIL', async () => {
      const rsv = ['3.1', '3.2', '3.3', '3.4', '3.5', '3.6', '3.7'];
      const unrelated = ['1.1.1', '2.1', '4.1.1', '5.3', '6.3.1'];
      const results = await runAgainst({ acceptRsv: true }, [...rsv, ...unrelated]);
      fails(results, rsv, 'acceptRsv');
      // The echoes that should not have happened are what failed 3.1–3.6 (3.7: the server treated the
      // RSV-7 frame as a normal close and answered 1000 instead of failing with 1002).
      for (const id of ['3.1', '3.2', '3.3', '3.4', '3.5', '3.6']) assert.equal(get(results, id).behavior, 'FAILED', explain(get(results, id)));
      assert.equal(get(results, '3.7').remoteCloseCode, 1000, explain(get(results, '3.7')));
      passes(results, unrelated, 'acceptRsv (unrelated case)');
    }),

    t.test('noPong: pings go unanswered → 2.1, 2.2, 2.3 FAIL', async () => {
      const ping = ['2.1', '2.2', '2.3'];
      const unrelated = ['1.1.1', '2.7', '3.1', '5.3', '6.3.1'];
      const results = await runAgainst({ noPong: true }, [...ping, ...unrelated]);
      fails(results, ping, 'noPong');
      for (const id of ping) {
        const r = get(results, id);
        assert.equal(r.behavior, 'FAILED', explain(r));
        assert.deepEqual(r.observed, [], explain(r));
        assert.equal(r.behaviorClose, 'OK', `the close itself was fine: ${explain(r)}`);
      }
      passes(results, unrelated, 'noPong (unrelated case)');
    }),

    t.test('noTcpClose: the server never closes TCP after the closing handshake → 1.1.1 FAILS on the close', async () => {
      const results = await runAgainst({ noTcpClose: true }, ['1.1.1', '1.2.1', '3.1']);
      const allowed: readonly CloseVerdict[] = ['FAILED BY CLIENT', 'UNCLEAN'];
      for (const id of ['1.1.1', '1.2.1', '3.1']) {
        const r = assertVerdict(results, id, ['FAILED'], 'noTcpClose');
        assert.ok(allowed.includes(r.behaviorClose), `noTcpClose: close verdict\n${explain(r)}`);
        assert.equal(r.droppedByMe, true, explain(r));
        // Specific: what the server sent was right, only the way the connection ended was not (every case
        // ends with a close, so no case can pass outright against this server).
        assert.equal(r.behavior, 'OK', `noTcpClose: events\n${explain(r)}`);
      }
    }),

    t.test('badFragmentEcho: each fragment is echoed as its own message → 5.3 and 5.6 FAIL', async () => {
      const fragmented = ['5.3', '5.6', '5.19', '6.2.2'];
      const unrelated = ['1.1.1', '1.2.1', '2.2', '3.1', '5.1', '5.9', '6.2.1'];
      const results = await runAgainst({ badFragmentEcho: true }, [...fragmented, ...unrelated]);
      fails(results, fragmented, 'badFragmentEcho');
      const r53 = get(results, '5.3');
      assert.equal(r53.observed.length, 2, `5.3 saw the two fragments as two messages\n${explain(r53)}`);
      passes(results, unrelated, 'badFragmentEcho (unrelated case)');
    }),
  ]);
});
