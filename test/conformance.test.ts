// The gate: every case of the conformance suite (Autobahn groups 1-7, 9 and 10: 301 cases) against
// wsmod's own echo route. Every case must be OK, or INFORMATIONAL where the suite itself says so.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ALL_CASES } from '../src/check/catalog.ts';
import { summaryTable } from '../src/check/report.ts';
import { runCases } from '../src/check/runner.ts';
import { echoPlugin, startHost } from './helpers.ts';

/** Cases the Autobahn TestSuite reports as INFORMATIONAL by design. */
const INFORMATIONAL = new Set(['7.1.6', '7.13.1', '7.13.2']);

test('wsmod passes all 301 cases: every one OK, or INFORMATIONAL where the suite says so', { timeout: 600_000 }, async () => {
  assert.equal(ALL_CASES.length, 301);
  const t = await startHost([{ path: '/echo', plugin: echoPlugin, maxMessageSize: 17 * 1024 * 1024 }]);
  try {
    const results = await runCases(`${t.base}/echo`, ALL_CASES);
    console.log(summaryTable(results));
    const wrong = results.filter((r) => (INFORMATIONAL.has(r.id) ? r.verdict !== 'INFORMATIONAL' : r.verdict !== 'OK'));
    assert.deepEqual(
      wrong.map((r) => `${r.id} ${r.verdict} (${r.result} / ${r.behaviorClose}: ${r.resultClose}) ${r.notes.join('; ')}`),
      [],
    );
  } finally {
    await t.close();
  }
});

test('wsmod check (the CLI) prints the summary, writes JSON and HTML reports, exits 0 when nothing failed and 1 otherwise', async () => {
  const cli = fileURLToPath(new URL('../dist/cli/wsmod.js', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'wsmod-check-'));
  const t = await startHost();
  try {
    const run = (args: string[]) =>
      new Promise<{ code: number; stdout: string }>((resolve) =>
        execFile(process.execPath, [cli, 'check', ...args], { encoding: 'utf8' }, (err, stdout) =>
          resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout }),
        ),
      );
    const ok = await run([`${t.base}/echo`, '--cases', '1.*,2.1', '--exclude', '1.2.*', '--report', dir]);
    assert.equal(ok.code, 0, ok.stdout);
    assert.match(ok.stdout, /9 cases/);
    assert.match(ok.stdout, /total\s+9\s+9\s+0\s+0\s+0\s+0/);
    const report = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { summary: { total: number; OK: number }; results: Array<{ id: string; wire: unknown[] }> };
    assert.equal(report.summary.total, 9);
    assert.equal(report.summary.OK, 9);
    assert.ok(report.results.every((r) => r.wire.length > 0), 'each case carries its wire log');
    assert.match(readFileSync(join(dir, 'index.html'), 'utf8'), /case-1\.1\.1\.html/);
    assert.ok(existsSync(join(dir, 'case-1.1.1.html')));
    // Group 9 sends up to 16 MiB: against the default 1 MiB limit those cases fail, and so does the run.
    const failing = await run([`${t.base}/echo`, '--cases', '9.1.6', '--report', dir, '--json']);
    assert.equal(failing.code, 1);
    const json = JSON.parse(failing.stdout) as { summary: { FAILED: number } };
    assert.equal(json.summary.FAILED, 1);
  } finally {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
