import { resolve } from 'node:path';
import { BASE_CASES, DEFLATE_CASES } from '../check/catalog.ts';
import { clientHandshake } from '../client/handshake.ts';
import { deflateOffer } from '../protocol/permessage-deflate.ts';
import { type CheckReport, summarize, summaryTable, writeReports } from '../check/report.ts';
import { runCases, selectCases } from '../check/runner.ts';
import type { CaseResult } from '../check/types.ts';

/** Options of `wsmod check`. */
export interface CheckOptions {
  readonly cases: readonly string[];
  readonly exclude: readonly string[];
  readonly report: string;
  readonly json: boolean;
}

/**
 * `wsmod check <url>`: runs the conformance cases against a WebSocket echo endpoint, shows progress,
 * prints a summary table (or the JSON report with --json), writes the JSON and HTML reports, and
 * returns the process exit status: 1 when any case FAILED.
 */
export async function check(url: string, options: CheckOptions): Promise<number> {
  // Groups 12 and 13 (permessage-deflate) run when the server negotiates the extension, as in Autobahn.
  const deflate = await negotiatesDeflate(url);
  const catalogue = deflate ? [...BASE_CASES, ...DEFLATE_CASES] : BASE_CASES;
  if (!deflate && !options.json) process.stdout.write('the server does not negotiate permessage-deflate: groups 12 and 13 are not run\n');
  const cases = selectCases(catalogue, options.cases, options.exclude);
  if (cases.length === 0) throw new Error('no case matches the --cases/--exclude patterns');
  const started = new Date();
  const t0 = performance.now();
  const tty = process.stderr.isTTY === true;
  const failed: CaseResult[] = [];
  const results = await runCases(url, cases, {
    onStart: (def, i, total) => {
      if (tty) process.stderr.write(`\r${bar(i, total)} ${String(i + 1).padStart(3)}/${total} case ${def.id.padEnd(8)}`);
    },
    onResult: (r) => {
      if (r.verdict === 'FAILED') failed.push(r);
    },
  });
  if (tty) process.stderr.write(`\r${' '.repeat(80)}\r`);
  const report: CheckReport = {
    tool: 'wsmod check',
    url,
    started: started.toISOString(),
    durationMs: Math.round(performance.now() - t0),
    summary: summarize(results),
    results,
  };
  const dir = resolve(options.report);
  await writeReports(dir, report);
  if (options.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    process.stdout.write(`wsmod check ${url}: ${results.length} cases in ${(report.durationMs / 1000).toFixed(1)} s\n\n`);
    process.stdout.write(`${summaryTable(results)}\n\n`);
    for (const r of failed) {
      process.stdout.write(`FAILED ${r.id}: ${r.result} ${r.behaviorClose !== 'OK' ? `Close: ${r.behaviorClose}, ${r.resultClose}` : ''}\n`);
    }
    process.stdout.write(`reports: ${resolve(dir, 'index.html')} and ${resolve(dir, 'index.json')}\n`);
  }
  return failed.length > 0 ? 1 : 0;
}

/** Whether the server accepts a permessage-deflate offer (one handshake, then the socket is dropped). */
async function negotiatesDeflate(url: string): Promise<boolean> {
  try {
    const hs = await clientHandshake(url, { extensions: deflateOffer({ clientMaxWindowBits: true }) });
    hs.socket.destroy();
    return /(^|,)\s*permessage-deflate/.test(hs.extensions);
  } catch {
    return false;
  }
}

function bar(done: number, total: number): string {
  const width = 30;
  const filled = Math.round((done / total) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}
