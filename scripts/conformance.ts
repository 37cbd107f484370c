// The conformance comparison behind docs/conformance.md: every case of `wsmod check` without compression (groups 1-10, 301)
// against three echo servers, one after another, each on 127.0.0.1 and a free port:
//   wsmod               test/helpers.ts startHost, the echo route as `wsmod serve` sets it (17 MiB messages)
//   ws                  the npm package ws (devDependency), WebSocketServer with maxPayload 17 MiB, else defaults
//   python3-websockets  Debian's package, test/peers/python_echo_server.py under /usr/bin/python3
// Each full report (JSON + HTML, with wire logs) goes to reports/conformance/<server>/; the markdown
// summary (verdict counts per group and server, and every case that is not OK somewhere) is printed
// on stdout and written to reports/conformance/summary.md; the Python server's stderr goes to
// reports/conformance/python3-websockets.log.
//
// Run: npm run conformance   (node --import tsx scripts/conformance.ts)
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { arch, cpus, platform, release } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { BASE_CASES as ALL_CASES } from '../src/check/catalog.ts';
import { type CheckReport, summarize, writeReports } from '../src/check/report.ts';
import { runCases } from '../src/check/runner.ts';
import type { CaseResult, Verdict } from '../src/check/types.ts';
import { echoPlugin, startHost } from '../test/helpers.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = join(ROOT, 'reports', 'conformance');
/** Debian's own Python, where Debian's python3-websockets is importable (as in scripts/peers.mjs). */
const PYTHON = '/usr/bin/python3';
const PY_SERVER = join(ROOT, 'test', 'peers', 'python_echo_server.py');
const MAX_MESSAGE = 17 * 1024 * 1024;

/** A running echo server. */
interface Running {
  readonly url: string;
  stop(): Promise<void>;
}

/** One server of the comparison. */
interface Server {
  readonly name: string;
  readonly version: string;
  start(): Promise<Running>;
}

function packageVersion(path: string): string {
  return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
}

function pythonWebsocketsVersion(): string {
  const r = spawnSync(PYTHON, ['-c', 'import websockets; print(websockets.__version__)'], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`python3-websockets is not importable by ${PYTHON} (apt-get install python3-websockets): ${r.stderr || r.error?.message}`);
  }
  return r.stdout.trim();
}

const wsmodServer: Server = {
  name: 'wsmod',
  version: packageVersion(join(ROOT, 'package.json')),
  async start() {
    const t = await startHost([{ path: '/echo', plugin: echoPlugin, maxMessageSize: MAX_MESSAGE }]);
    return { url: `${t.base}/echo`, stop: () => t.close() };
  },
};

const wsServer: Server = {
  name: 'ws',
  version: packageVersion(join(ROOT, 'node_modules', 'ws', 'package.json')),
  async start() {
    // Only maxPayload is set; every other option (perMessageDeflate off, maxFragments, autoPong, …) as shipped.
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: MAX_MESSAGE });
    wss.on('connection', (ws) => {
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
      // ws emits 'error' for every protocol violation (after it has closed with the right code);
      // without a listener the process would crash. What it put on the wire is in the report.
      ws.on('error', () => {});
    });
    await once(wss, 'listening');
    const { port } = wss.address() as AddressInfo;
    return {
      url: `ws://127.0.0.1:${port}/echo`,
      stop: () =>
        new Promise<void>((resolve) => {
          for (const c of wss.clients) c.terminate();
          wss.close(() => resolve());
        }),
    };
  },
};

const pythonServer: Server = {
  name: 'python3-websockets',
  version: pythonWebsocketsVersion(),
  async start() {
    await mkdir(OUT, { recursive: true });
    const log = createWriteStream(join(OUT, 'python3-websockets.log'));
    const child: ChildProcess = spawn(PYTHON, [PY_SERVER], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr!.pipe(log);
    const exited = once(child, 'exit');
    const port = await new Promise<number>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout! });
      lines.once('line', (line) => {
        const n = Number(line.trim());
        if (Number.isInteger(n) && n > 0) resolve(n);
        else reject(new Error(`python echo server printed "${line}" instead of its port`));
      });
      child.once('error', reject);
      void exited.then(([code]) => reject(new Error(`python echo server exited (${String(code)}) before printing its port; see ${log.path}`)));
    });
    return {
      url: `ws://127.0.0.1:${port}/echo`,
      async stop() {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          await exited;
        }
        log.end();
      },
    };
  },
};

const SERVERS: readonly Server[] = [wsmodServer, wsServer, pythonServer];
const VERDICTS: readonly Verdict[] = ['OK', 'NON-STRICT', 'INFORMATIONAL', 'UNIMPLEMENTED', 'FAILED'];

interface Run {
  readonly server: Server;
  readonly report: CheckReport;
}

async function runOne(server: Server): Promise<Run> {
  const running = await server.start();
  process.stderr.write(`${server.name} ${server.version}: ${running.url}\n`);
  const started = new Date();
  const t0 = performance.now();
  let results: CaseResult[];
  try {
    results = await runCases(running.url, ALL_CASES, {
      onResult: (r, i, total) => {
        if (process.stderr.isTTY === true) process.stderr.write(`\r  ${String(i + 1).padStart(3)}/${total} ${r.id.padEnd(8)} ${r.verdict.padEnd(14)}`);
        else if (r.verdict !== 'OK') process.stderr.write(`  ${r.id} ${r.verdict}\n`);
      },
    });
  } finally {
    await running.stop();
  }
  if (process.stderr.isTTY === true) process.stderr.write('\n');
  const report: CheckReport = {
    tool: `wsmod check (scripts/conformance.ts, server ${server.name} ${server.version})`,
    url: running.url,
    started: started.toISOString(),
    durationMs: Math.round(performance.now() - t0),
    summary: summarize(results),
    results,
  };
  const dir = join(OUT, server.name);
  await rm(dir, { recursive: true, force: true });
  await writeReports(dir, report);
  process.stderr.write(`  ${results.length} cases in ${(report.durationMs / 1000).toFixed(1)} s; report: ${join(dir, 'index.html')}\n`);
  return { server, report };
}

function groupOf(id: string): string {
  return id.split('.')[0] ?? id;
}

/** "FAILED (1002)"; for FAILED also which part failed. */
function cell(r: CaseResult | undefined): string {
  if (r === undefined) return '–';
  const code = r.remoteCloseCode === null ? 'no close code' : String(r.remoteCloseCode);
  if (r.verdict !== 'FAILED') return `${r.verdict} (${code})`;
  const why = [r.behavior === 'FAILED' ? 'events' : '', r.behaviorClose !== 'OK' ? `close ${r.behaviorClose}` : ''].filter((s) => s !== '');
  return `FAILED: ${why.join(', ')} (${code})`;
}

function markdown(runs: readonly Run[]): string {
  const out: string[] = [];
  const shown = VERDICTS.filter((v) => v !== 'UNIMPLEMENTED' || runs.some((r) => r.report.summary[v] > 0));
  const abbrev: Record<Verdict, string> = { OK: 'OK', 'NON-STRICT': 'NS', INFORMATIONAL: 'INFO', UNIMPLEMENTED: 'UNIMPL', FAILED: 'FAILED' };
  out.push(`Node ${process.version}, ${platform()} ${release()} ${arch()}, ${cpus()[0]?.model ?? '?'}; ${new Date().toISOString()}`);
  out.push('');
  out.push(`Servers: ${runs.map((r) => `${r.server.name} ${r.server.version} (${(r.report.durationMs / 1000).toFixed(1)} s)`).join(', ')}.`);
  out.push('');
  out.push(`Counts per group, each server's cell ${shown.map((v) => abbrev[v]).join(' / ')}:`);
  out.push('');
  out.push(`| group | cases | ${runs.map((r) => r.server.name).join(' | ')} |`);
  out.push(`|---|--:|${runs.map(() => '--:').join('|')}|`);
  const groups = [...new Set(ALL_CASES.map((c) => groupOf(c.id)))];
  const counts = (results: readonly CaseResult[]) => {
    const s = summarize(results);
    return shown.map((v) => String(s[v])).join(' / ');
  };
  for (const g of groups) {
    const n = ALL_CASES.filter((c) => groupOf(c.id) === g).length;
    out.push(`| ${g} | ${n} | ${runs.map((r) => counts(r.report.results.filter((x) => groupOf(x.id) === g))).join(' | ')} |`);
  }
  out.push(`| **total** | **${ALL_CASES.length}** | ${runs.map((r) => `**${counts(r.report.results)}**`).join(' | ')} |`);
  out.push('');
  out.push('Every case that is not OK on at least one server (verdict, and the close code the server sent):');
  out.push('');
  out.push(`| case | ${runs.map((r) => r.server.name).join(' | ')} |`);
  out.push(`|---|${runs.map(() => '---').join('|')}|`);
  const byId = runs.map((r) => new Map(r.report.results.map((x) => [x.id, x])));
  for (const c of ALL_CASES) {
    const rs = byId.map((m) => m.get(c.id));
    if (rs.every((r) => r?.verdict === 'OK')) continue;
    out.push(`| ${c.id} | ${rs.map(cell).join(' | ')} |`);
  }
  out.push('');
  out.push(`Full reports: ${runs.map((r) => `reports/conformance/${r.server.name}/index.html`).join(', ')}.`);
  return `${out.join('\n')}\n`;
}

const runs: Run[] = [];
for (const server of SERVERS) runs.push(await runOne(server));
const summary = markdown(runs);
await writeFile(join(OUT, 'summary.md'), summary);
process.stdout.write(summary);
