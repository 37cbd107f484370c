/**
 * `npm run bench [-- --quick] [-- --only flood,paced] [-- --servers wsmod,ws] [-- --profile flood]`
 *
 * Runs every scenario against each server under the same load, one server at a time: the server in its
 * own process pinned to core 0, the load generator (and this orchestrator) pinned to core 1 with
 * `taskset`. Server CPU comes from /proc/<pid>/stat over the measured window, memory from
 * /proc/<pid>/status and from process.memoryUsage() after a forced GC (asked over the server's stdin).
 * Prints the table and writes bench/results/<timestamp>.json; a complete run (every scenario, every
 * server) also writes latest.json and latest.svg. Method and latest numbers: docs/performance.md.
 *
 * --profile <scenarios>: runs those scenarios against wsmod (or --servers) under `node --cpu-prof`
 * and prints the top self-time functions of the measured window; for `idle`, heap snapshots before and
 * after the connections open, summarized per connection. The files stay in a temp dir.
 * --rounds N: runs each scenario N times, alternating the servers' order, and keeps each server's best
 * run (default 1 with --quick, else 2; the idle scenarios run once).
 * --nice N: servers, generators and this orchestrator at that priority (a shared machine).
 * --verbose, --server-node-args "--trace-gc", --chart-only (redraws latest.svg from latest.json).
 */
import { type ChildProcessWithoutNullStreams, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { GeneratorConfig } from './generator.ts';
import { heapDiff } from './heap.ts';
import { type CoreTimes, coreBusy, coreIrq, coreTimes, machine, monotonicUs, openFileLimit, processCpu, resetPeakRss, statusBytes } from './proc.ts';
import { type MetricRow, SERVER_IDS, SERVER_LABELS, type ServerId, makeRow, markdownTable, summarizeProfile, svgChart, table } from './report.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------------
// Options

const argv = process.argv.slice(2);
const flag = (name: string): boolean => argv.includes(name);
const option = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i === -1 ? undefined : argv[i + 1];
};
const quick = flag('--quick');
const profileList = option('--profile')?.split(',');
const onlyList = profileList ?? option('--only')?.split(',');
const serverList = (option('--servers')?.split(',') ?? (profileList !== undefined ? ['wsmod'] : [...SERVER_IDS])) as ServerId[];
const verbose = flag('--verbose');
/** --server-node-args "...": extra Node flags for the server processes (e.g. --trace-gc; output shows with --verbose). */
const serverNodeArgs = option('--server-node-args')?.split(' ').filter((a) => a !== '') ?? [];
/** --nice N: runs servers and generators at that scheduling priority (negative needs root): on a shared machine. */
const niceness = option('--nice') === undefined ? undefined : Number(option('--nice'));
const rounds = Math.max(1, Math.min(5, Number(option('--rounds') ?? (quick ? 1 : 2)) || 1));
/** Longest wait, before each run, for other work on core 0 to calm down. */
const QUIET_WAIT_MS = quick ? 0 : 2000;
for (const s of serverList) if (!SERVER_IDS.includes(s)) throw new Error(`unknown server ${s}; one of ${SERVER_IDS.join(', ')}`);

const SERVER_CORE = 0;
const GENERATOR_CORE = 1;

// ---------------------------------------------------------------------------------------------------
// Child processes: JSON lines on stdout, commands on stdin, every one killed when we exit.

const children = new Set<Child>();

class Child {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly pid: number;
  #queue: Array<Record<string, unknown>> = [];
  #waiters: Array<{ pred: (m: Record<string, unknown>) => boolean; resolve: (m: Record<string, unknown>) => void; reject: (e: Error) => void }> = [];
  #exit: Promise<number | null>;
  #exited = false;
  stderrTail = '';

  constructor(
    readonly name: string,
    core: number,
    args: readonly string[],
    env: Record<string, string> = {},
  ) {
    const pinned = pinning ? ['taskset', '-c', String(core)] : [];
    const niced = niceness === undefined ? [] : ['nice', '-n', String(niceness)];
    const [cmd, ...full] = [...niced, ...pinned, process.execPath, ...args] as [string, ...string[]];
    this.proc = spawn(cmd, full, { cwd: root, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    if (this.proc.pid === undefined) throw new Error(`could not start ${name}`);
    this.pid = this.proc.pid; // nice and taskset exec the command: same pid
    children.add(this);
    this.#exit = new Promise((resolve) => {
      this.proc.on('exit', (code) => {
        this.#exited = true;
        children.delete(this);
        const err = new Error(`${name} exited (code ${code}) ${this.stderrTail.slice(-800)}`);
        for (const w of this.#waiters.splice(0)) w.reject(err);
        resolve(code);
      });
    });
    this.proc.stdin.on('error', () => {});
    createInterface({ input: this.proc.stdout }).on('line', (line) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        if (verbose) process.stderr.write(`[${name}] ${line}\n`);
        return;
      }
      if (msg['event'] === 'error') this.stderrTail += `\n${String(msg['message'])}`;
      const i = this.#waiters.findIndex((w) => w.pred(msg));
      if (i === -1) this.#queue.push(msg);
      else this.#waiters.splice(i, 1)[0]!.resolve(msg);
    });
    this.proc.stderr.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-4000);
      if (verbose) process.stderr.write(`[${name}] ${chunk.toString()}`);
    });
  }

  /** The next message matching `pred` (already received or to come), within `ms`. */
  next(pred: (m: Record<string, unknown>) => boolean, ms: number, what: string): Promise<Record<string, unknown>> {
    const i = this.#queue.findIndex(pred);
    if (i !== -1) return Promise.resolve(this.#queue.splice(i, 1)[0]!);
    const failure = this.#queue.find((m) => m['event'] === 'error');
    if (failure !== undefined) return Promise.reject(new Error(`${this.name}: ${String(failure['message'])}`));
    if (this.#exited) return Promise.reject(new Error(`${this.name} has exited: ${this.stderrTail.slice(-800)}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const k = this.#waiters.indexOf(waiter);
        if (k !== -1) this.#waiters.splice(k, 1);
        reject(new Error(`${this.name}: no ${what} within ${ms} ms ${this.stderrTail.slice(-800)}`));
      }, ms);
      const waiter = {
        pred: (m: Record<string, unknown>) => pred(m) || m['event'] === 'error',
        resolve: (m: Record<string, unknown>) => {
          clearTimeout(timer);
          if (m['event'] === 'error' && !pred(m)) reject(new Error(`${this.name}: ${String(m['message'])}`));
          else resolve(m);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#waiters.push(waiter);
    });
  }

  event(name: string, ms: number): Promise<Record<string, unknown>> {
    return this.next((m) => m['event'] === name, ms, `"${name}"`);
  }

  send(line: string): void {
    if (!this.#exited) this.proc.stdin.write(`${line}\n`);
  }

  /** Asks it to exit (stdin 'exit', then closed), kills it after `ms`. */
  async stop(ms = 5000): Promise<void> {
    if (this.#exited) return;
    this.send('exit');
    this.proc.stdin.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), ms);
    await this.#exit;
    clearTimeout(timer);
  }

  kill(): void {
    if (!this.#exited) this.proc.kill('SIGKILL');
  }
}

function killAll(): void {
  for (const c of children) c.kill();
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig}, stopping the servers and generators it started\n`);
    killAll();
    process.exit(130);
  });
}

// ---------------------------------------------------------------------------------------------------
// Servers and generators

const SERVER_FILES: Record<ServerId, { file: string; env: Record<string, string> }> = {
  wsmod: { file: 'bench/servers/wsmod.ts', env: {} },
  ws: { file: 'bench/servers/ws.ts', env: {} },
  'ws-noaddons': { file: 'bench/servers/ws.ts', env: { WS_NO_BUFFER_UTIL: '1', WS_NO_UTF_8_VALIDATE: '1' } },
  minimal: { file: 'bench/servers/minimal.ts', env: {} },
};

interface Server {
  readonly id: ServerId;
  readonly child: Child;
  readonly port: number;
  readonly path: string;
  readonly info: Record<string, unknown>;
  readonly profileDir: string | undefined;
}

async function startServer(id: ServerId, profileDir?: string, env: Record<string, string> = {}): Promise<Server> {
  const spec = SERVER_FILES[id];
  const nodeArgs = ['--expose-gc', ...serverNodeArgs];
  if (profileDir !== undefined) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--cpu-prof-interval=200');
  const child = new Child(`server ${id}`, SERVER_CORE, [...nodeArgs, '--import', 'tsx', spec.file], { ...spec.env, ...env });
  const hello = await child.next((m) => typeof m['port'] === 'number', 30_000, 'port announcement');
  return { id, child, port: hello['port'] as number, path: '/echo', info: (hello['info'] as Record<string, unknown>) ?? {}, profileDir };
}

function startGenerator(config: GeneratorConfig): Child {
  return new Child('generator', GENERATOR_CORE, ['--import', 'tsx', 'bench/generator.ts', JSON.stringify(config)]);
}

/** Forced GC in the server; its memoryUsage() and VmRSS afterwards. */
async function serverMemory(s: Server): Promise<{ rss: number; heapUsed: number; external: number; arrayBuffers: number; conns: number }> {
  s.child.send('gc');
  const r = await s.child.next((m) => m['reply'] === 'gc', 30_000, 'gc reply');
  const mem = r['mem'] as { heapUsed: number; external: number; arrayBuffers: number };
  return { rss: statusBytes(s.child.pid, 'VmRSS'), heapUsed: mem.heapUsed, external: mem.external, arrayBuffers: mem.arrayBuffers, conns: r['conns'] as number };
}

/** Server CPU and core 0 load over a window bracketed by the generator's measure-start/measure-end. */
async function measuredWindow(s: Server, gen: Child, timeoutMs: number): Promise<{ cpuSec: number; userSec: number; wallSec: number; core0Busy: number; core0Irq: number; fromUs: number; toUs: number }> {
  await gen.event('measure-start', timeoutMs);
  const fromUs = monotonicUs();
  const c0 = processCpu(s.child.pid);
  const k0: CoreTimes = coreTimes(SERVER_CORE);
  await gen.event('measure-end', timeoutMs);
  const toUs = monotonicUs();
  const c1 = processCpu(s.child.pid);
  const k1 = coreTimes(SERVER_CORE);
  const userSec = c1.user - c0.user;
  return { cpuSec: userSec + c1.system - c0.system, userSec, wallSec: (toUs - fromUs) / 1e6, core0Busy: coreBusy(k0, k1), core0Irq: coreIrq(k0, k1), fromUs, toUs };
}

// ---------------------------------------------------------------------------------------------------
// Scenarios

type RunResult = Record<string, unknown> & { genCpu?: number; fromUs?: number; toUs?: number };

interface Scenario {
  readonly id: string;
  readonly title: string;
  readonly skip?: string;
  /** Which run of several is a server's best (among the valid ones). */
  readonly best?: { readonly key: string; readonly better: 'lower' | 'higher' };
  /** Why a run does not count (undefined: it does). A server whose every run is invalid is flagged. */
  readonly invalid?: (r: RunResult) => string | undefined;
  /** Runs in the first round only. */
  readonly once?: boolean;
  /** The servers it applies to (default: all). */
  readonly servers?: readonly ServerId[];
  /** Environment of the server processes. */
  readonly env?: Record<string, string>;
  run?(s: Server): Promise<RunResult>;
}

const T = quick
  ? { warm: 600, measure: 1500, pacedWarm: 800, pacedMeasure: 2000, reps: 2 }
  : { warm: 1500, measure: 5000, pacedWarm: 2000, pacedMeasure: 8000, reps: 4 };

const fdLimit = openFileLimit();
const IDLE_CONNS = Math.min(10_000, fdLimit - 500);

async function pacedRun(s: Server, conns: number, ratePerConn: number, warmupMs: number, durationMs: number): Promise<RunResult> {
  const gen = startGenerator({ mode: 'paced', port: s.port, path: s.path, conns, ratePerConn, size: 32, warmupMs, durationMs });
  try {
    await gen.event('ready', 90_000);
    const w = await measuredWindow(s, gen, warmupMs + durationMs + 30_000);
    const r = await gen.event('result', 30_000);
    const received = r['received'] as number;
    const lat = r['latencyUs'] as Record<string, number>;
    return {
      cpuUsPerMsg: (w.cpuSec * 1e6) / received,
      userUsPerMsg: (w.userSec * 1e6) / received,
      msgsPerSec: received / w.wallSec,
      targetRate: conns * ratePerConn,
      serverCpu: w.cpuSec / w.wallSec,
      userShare: w.userSec / w.cpuSec,
      core0Busy: w.core0Busy,
      core0Irq: w.core0Irq,
      p50Us: lat['p50'],
      p99Us: lat['p99'],
      maxUs: lat['max'],
      skipped: r['skipped'],
      sent: r['sent'],
      received,
      genCpu: r['genCpu'] as number,
      fromUs: w.fromUs,
      toUs: w.toUs,
    };
  } finally {
    await gen.stop();
  }
}

async function floodRun(s: Server, conns: number, size: number, binary: boolean, window: number, batch: number, deflate = false): Promise<RunResult> {
  const gen = startGenerator({ mode: 'flood', port: s.port, path: s.path, conns, size, binary, window, batch, warmupMs: T.warm, durationMs: T.measure, deflate });
  try {
    const ready = await gen.event('ready', 90_000);
    const w = await measuredWindow(s, gen, T.warm + T.measure + 30_000);
    const r = await gen.event('result', 30_000);
    const messages = r['messages'] as number;
    const bytes = r['bytes'] as number;
    return {
      msgsPerSec: messages / w.wallSec,
      MBps: bytes / 1e6 / w.wallSec,
      msgsPerCpuSec: messages / w.cpuSec,
      MBperCpuSec: bytes / 1e6 / w.cpuSec,
      wireBytesIn: ready['wireBytesPerMessage'],
      wireBytesOut: bytes / messages,
      cpuUsPerMsg: (w.cpuSec * 1e6) / messages,
      serverCpu: w.cpuSec / w.wallSec,
      userShare: w.userSec / w.cpuSec,
      core0Busy: w.core0Busy,
      core0Irq: w.core0Irq,
      drained: r['drained'],
      genCpu: r['genCpu'] as number,
      fromUs: w.fromUs,
      toUs: w.toUs,
    };
  } finally {
    await gen.stop();
  }
}

/** Opens `n` idle connections (optionally with permessage-deflate and one message each); memory per connection. */
async function idleRun(s: Server, n: number, deflate = false, prime?: number): Promise<RunResult> {
  const snapshots = s.profileDir === undefined ? undefined : ([join(s.profileDir, 'before.heapsnapshot'), join(s.profileDir, 'after.heapsnapshot')] as const);
  const before = await serverMemory(s);
  if (snapshots !== undefined) await heapSnapshot(s, snapshots[0]);
  const fromUs = monotonicUs();
  const gen = startGenerator({ mode: 'idle', port: s.port, path: s.path, conns: n, concurrency: 256, holdMs: 180_000, deflate, ...(prime === undefined ? {} : { prime }) });
  try {
    const opened = await gen.event('opened', 120_000);
    await sleep(1000);
    const after = await serverMemory(s);
    const toUs = monotonicUs();
    if (after.conns !== n) throw new Error(`server reports ${after.conns} connections, expected ${n}`);
    if (snapshots !== undefined) {
      await heapSnapshot(s, snapshots[1]);
      const diff = heapDiff(snapshots[0], snapshots[1], n);
      console.log(`\n  heap per connection (${s.id}), from snapshots before/after: ${diff.totalBytes.toFixed(0)} bytes of V8 heap self size`);
      for (const e of diff.entries) console.log(`    ${e.bytes.toFixed(1).padStart(8)} B  ${e.objects.toFixed(2).padStart(6)} objects  ${e.kind}`);
      console.log(`  snapshots: ${snapshots.join(', ')}\n`);
    }
    // No polite teardown: both processes are stopped next, and the kernel closes the sockets.
    return {
      rssPerConn: (after.rss - before.rss) / n,
      heapExtPerConn: (after.heapUsed + after.external - (before.heapUsed + before.external)) / n,
      heapPerConn: (after.heapUsed - before.heapUsed) / n,
      externalPerConn: (after.external - before.external) / n,
      openMs: opened['ms'],
      before,
      after,
      genCpu: opened['genCpu'] as number,
      fromUs,
      toUs,
    };
  } finally {
    await gen.stop();
  }
}

const SCENARIOS: Scenario[] = [
  {
    id: 'paced',
    title: '(1) paced echo: 1,000 connections x 20 msg/s x 32 B text',
    // Of the runs that kept the pace, the least disturbed: under contention CPU per message drops
    // (more messages per wake-up), so the lowest figure would reward a starved run.
    best: { key: 'core0Other', better: 'lower' },
    invalid: (r) => ((r['msgsPerSec'] as number) < 0.95 * (r['targetRate'] as number) ? `only ${Math.round(((r['msgsPerSec'] as number) / (r['targetRate'] as number)) * 100)}% of the paced rate was delivered (starved by other work)` : undefined),
    run: (s) => pacedRun(s, 1000, 20, T.pacedWarm, T.pacedMeasure),
  },
  {
    id: 'flood',
    title: '(2) flood echo: 100 connections, 32 B text, 1,024 in flight per connection (batches of 128 per write)',
    best: { key: 'msgsPerSec', better: 'higher' },
    run: (s) => floodRun(s, 100, 32, false, 1024, 128),
  },
  {
    id: 'large',
    title: '(3) 64 KiB echo: 16 connections, 64 KiB binary, 4 in flight per connection',
    best: { key: 'MBps', better: 'higher' },
    run: (s) => floodRun(s, 16, 64 * 1024, true, 4, 1),
  },
  {
    id: 'handshakes',
    title: '(4) handshakes: 64 concurrent clients, each: connect, upgrade, 101, close frame with FIN, again',
    best: { key: 'perSec', better: 'higher' },
    async run(s) {
      const gen = startGenerator({ mode: 'handshake', port: s.port, path: s.path, concurrency: 64, warmupMs: T.warm, durationMs: T.measure });
      try {
        await gen.event('ready', 30_000);
        const w = await measuredWindow(s, gen, T.warm + T.measure + 30_000);
        const r = await gen.event('result', 30_000);
        const n = r['handshakes'] as number;
        return {
          perSec: n / w.wallSec,
          perCpuSec: n / w.cpuSec,
          cpuUsPerHandshake: (w.cpuSec * 1e6) / n,
          serverCpu: w.cpuSec / w.wallSec,
      userShare: w.userSec / w.cpuSec,
          core0Busy: w.core0Busy,
      core0Irq: w.core0Irq,
          refused: r['refused'],
          errors: r['errors'],
          genCpu: r['genCpu'] as number,
          fromUs: w.fromUs,
          toUs: w.toUs,
        };
      } finally {
        await gen.stop();
      }
    },
  },
  {
    id: 'idle',
    title: `(5) ${IDLE_CONNS.toLocaleString('en-US')} idle connections: memory per connection after a forced GC`,
    once: true,
    run: (s) => idleRun(s, IDLE_CONNS),
  },
  {
    id: 'fragments',
    title: '(6) one 1 MiB binary message in 1-byte fragments (1,048,576 frames, 7 MiB on the wire): time and peak RSS',
    best: { key: 'ms', better: 'lower' },
    async run(s) {
      const gen = startGenerator({ mode: 'fragments', port: s.port, path: s.path, size: MiB, fragment: 1, repTimeoutMs: 120_000 });
      const times: number[] = [];
      const peaks: number[] = [];
      let genCpu = 0;
      let resetOk = true;
      const fromUs = monotonicUs();
      try {
        await gen.event('ready', 60_000);
        for (let i = 0; i < T.reps; i++) {
          await serverMemory(s);
          const base = statusBytes(s.child.pid, 'VmRSS');
          resetOk &&= resetPeakRss(s.child.pid);
          gen.send('go');
          const rep = await gen.event('rep', 130_000);
          const peak = statusBytes(s.child.pid, 'VmHWM');
          times.push(rep['ms'] as number);
          peaks.push(Math.max(0, peak - base));
          genCpu = Math.max(genCpu, rep['genCpu'] as number);
        }
      } finally {
        await gen.stop();
      }
      return {
        ms: median(times),
        times,
        peakMiB: median(peaks) / MiB,
        peaksMiB: peaks.map((p) => p / MiB),
        peakMeasure: resetOk ? 'VmHWM reset before each repetition (clear_refs 5)' : 'VmHWM since start (reset refused)',
        genCpu,
        fromUs,
        toUs: monotonicUs(),
      };
    },
  },
  {
    id: 'latency',
    title: '(7) latency at a moderate paced load: 250 connections x 20 msg/s x 32 B text (5,000 msg/s)',
    best: { key: 'core0Other', better: 'lower' },
    invalid: (r) => ((r['msgsPerSec'] as number) < 0.95 * (r['targetRate'] as number) ? `only ${Math.round(((r['msgsPerSec'] as number) / (r['targetRate'] as number)) * 100)}% of the paced rate was delivered (starved by other work)` : undefined),
    run: (s) => pacedRun(s, 250, 20, T.pacedWarm, T.pacedMeasure),
  },
  {
    id: 'deflate',
    title: '(8a) permessage-deflate echo: 50 connections, 4 KiB JSON text compressed, 16 in flight per connection (not the minimal echo: it has no deflate)',
    best: { key: 'msgsPerSec', better: 'higher' },
    servers: ['wsmod', 'ws', 'ws-noaddons'],
    env: { BENCH_DEFLATE: '1' },
    run: (s) => floodRun(s, 50, 4096, false, 16, 4, true),
  },
  {
    id: 'deflate-idle',
    title: '(8b) permessage-deflate idle memory: 1,000 connections that each echoed one 4 KiB compressed message',
    once: true,
    servers: ['wsmod', 'ws', 'ws-noaddons'],
    env: { BENCH_DEFLATE: '1' },
    run: (s) => idleRun(s, 1000, true, 4096),
  },
  {
    id: 'broadcast',
    title: '(9) broadcast',
    skip: 'skipped: wsmod has no broadcast API yet (the plugin API sends per session); this scenario runs once it does',
  },
];

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function heapSnapshot(s: Server, file: string): Promise<void> {
  s.child.send(`heapsnapshot ${file}`);
  await s.child.next((m) => m['reply'] === 'heapsnapshot', 300_000, 'heap snapshot');
}

/** Waits (at most `ms`) until core 0 is mostly idle; returns its busy share over the last 300 ms. */
async function waitQuiet(ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  for (;;) {
    const a = coreTimes(SERVER_CORE);
    await sleep(ms > 0 ? 300 : 100);
    const busy = coreBusy(a, coreTimes(SERVER_CORE));
    if (busy < 0.15 || Date.now() >= deadline) return busy;
  }
}

// ---------------------------------------------------------------------------------------------------
// Rows: which figure of which scenario, its direction and target

function rowsFrom(results: Record<string, Partial<Record<ServerId, RunResult>>>): MetricRow[] {
  const rows: MetricRow[] = [];
  const pick = (scenario: string, key: string): Partial<Record<ServerId, number>> => {
    const out: Partial<Record<ServerId, number>> = {};
    for (const id of SERVER_IDS) {
      const v = results[scenario]?.[id]?.[key];
      if (typeof v === 'number' && Number.isFinite(v)) out[id] = v;
    }
    return out;
  };
  const flags = (scenario: string): string[] => {
    const f: string[] = [];
    for (const id of SERVER_IDS) {
      const r = results[scenario]?.[id];
      if (r === undefined) continue;
      if (typeof r.genCpu === 'number' && r.genCpu > 0.9) f.push(`generator saturated (${Math.round(r.genCpu * 100)}%) for ${id}`);
      const other = r['core0Other'];
      if (typeof other === 'number' && other > 0.1) f.push(`core 0 shared with other processes (${Math.round(other * 100)}% of it) during ${id}`);
      if (typeof r['invalid'] === 'string') f.push(`${scenario}/${id}: no valid run: ${r['invalid']}`);
    }
    return f;
  };
  const add = (scenario: string, key: string, metric: string, unit: string, better: 'lower' | 'higher', target?: MetricRow['target'], scale = 1): void => {
    if (results[scenario] === undefined) return;
    const values = pick(scenario, key);
    for (const id of Object.keys(values) as ServerId[]) values[id] = values[id]! * scale;
    rows.push(makeRow(scenario, metric, unit, better, values, target, flags(scenario)));
  };
  add('paced', 'cpuUsPerMsg', 'server CPU per message', 'µs', 'lower', { kind: 'ratio-max', value: 0.85, text: '<= 0.85x ws' });
  add('paced', 'userUsPerMsg', 'of which user space (JS, libuv)', 'µs', 'lower');
  add('paced', 'p99Us', 'p99 round trip at 20,000 msg/s', 'µs', 'lower');
  add('flood', 'msgsPerSec', 'messages/s', 'msg/s', 'higher', { kind: 'ratio-min', value: 10, text: '>= 10x ws' });
  add('flood', 'msgsPerCpuSec', 'messages per server CPU-second', 'msg', 'higher', { kind: 'ratio-min', value: 10, text: '>= 10x ws (cross-check)' });
  add('large', 'MBps', 'echo throughput', 'MB/s', 'higher', { kind: 'ratio-min', value: 1, text: '>= 1.0x ws' });
  add('large', 'MBperCpuSec', 'MB echoed per server CPU-second', 'MB', 'higher', { kind: 'ratio-min', value: 1, text: '>= 1.0x ws (cross-check)' });
  add('handshakes', 'perSec', 'handshakes/s', '/s', 'higher', { kind: 'ratio-min', value: 1.2, text: '>= 1.2x ws' });
  add('handshakes', 'perCpuSec', 'handshakes per server CPU-second', '', 'higher', { kind: 'ratio-min', value: 1.2, text: '>= 1.2x ws (cross-check)' });
  add('idle', 'rssPerConn', 'RSS per connection', 'bytes', 'lower', { kind: 'ratio-max', value: 0.6, text: '<= 0.6x ws' });
  add('idle', 'heapExtPerConn', 'heap+external per connection', 'bytes', 'lower', { kind: 'ratio-max', value: 0.6, text: '<= 0.6x ws' });
  add('fragments', 'ms', 'time to echo', 'ms', 'lower', { kind: 'ratio-max', value: 0.2, text: '<= 0.2x ws (5x faster)' });
  add('fragments', 'peakMiB', 'peak RSS above baseline', 'MiB', 'lower', { kind: 'abs-max', value: 4, text: '< 4 MiB' });
  add('deflate', 'msgsPerSec', 'messages/s, 4 KiB compressed', 'msg/s', 'higher');
  add('deflate', 'cpuUsPerMsg', 'server CPU per message', 'µs', 'lower');
  add('deflate-idle', 'rssPerConn', 'RSS per connection', 'bytes', 'lower');
  add('deflate-idle', 'heapExtPerConn', 'heap+external per connection', 'bytes', 'lower');
  add('latency', 'p50Us', 'p50 round trip at 5,000 msg/s', 'µs', 'lower');
  add('latency', 'p99Us', 'p99 round trip at 5,000 msg/s', 'µs', 'lower');
  add('latency', 'cpuUsPerMsg', 'server CPU per message', 'µs', 'lower');
  return rows;
}

// ---------------------------------------------------------------------------------------------------
// Main

let pinning = true;

function gitDescribe(): Record<string, unknown> {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: root, encoding: 'utf8' }).trim() !== '';
    return { commit, srcModified: dirty };
  } catch {
    return {};
  }
}

/** The chart's title and subtitle for a results document. */
function chartTitles(mode: string, date: string, mach: Record<string, unknown>): [string, string] {
  return [
    `wsmod vs ws, ${mode} run, ${date.slice(0, 16).replace('T', ' ')} UTC`,
    `${String(mach['cpuModel'])}, ${String(mach['nproc'])} cores, Node ${String(mach['node'])}; each server's advantage over ws (ws with bufferutil = 1x), log scale`,
  ];
}

async function main(): Promise<void> {
  if (flag('--chart-only')) {
    // Redraws bench/results/latest.svg from latest.json (after a change to the chart).
    const dir = join(root, 'bench', 'results');
    const doc = JSON.parse(readFileSync(join(dir, 'latest.json'), 'utf8')) as { rows: MetricRow[]; mode: string; date: string; machine: Record<string, unknown> };
    writeFileSync(join(dir, 'latest.svg'), svgChart(doc.rows, ...chartTitles(doc.mode, doc.date, doc.machine)));
    console.log('wrote bench/results/latest.svg');
    return;
  }
  const started = Date.now();
  const mach = machine();
  const nproc = mach['nproc'] as number;
  if (spawnSync('taskset', ['-V']).error !== undefined) {
    pinning = false;
    console.warn('bench: taskset not found (util-linux): processes are NOT pinned; results are less reliable');
  } else if (nproc < 2) {
    pinning = false;
    console.warn('bench: fewer than 2 cores: processes are NOT pinned; server and generator share the core');
  } else {
    // This orchestrator mostly waits; it lives on the generator's core so core 0 is the server's alone.
    spawnSync('taskset', ['-a', '-p', '-c', String(GENERATOR_CORE), String(process.pid)]);
  }
  // The orchestrator reads the server's CPU at the window's edges: it gets the same priority.
  if (niceness !== undefined) spawnSync('renice', ['-n', String(niceness), '-p', String(process.pid)]);
  if (IDLE_CONNS < 10_000) console.warn(`bench: open-file limit ${fdLimit}: the idle scenario uses ${IDLE_CONNS} connections instead of 10,000`);

  const partial = onlyList !== undefined || serverList.length < SERVER_IDS.length;
  const profileDir = profileList !== undefined ? mkdtempSync(join(tmpdir(), 'wsmod-bench-prof-')) : undefined;
  const scenarios = SCENARIOS.filter((s) => onlyList === undefined || onlyList.includes(s.id));
  if (scenarios.length === 0) throw new Error(`no scenario among ${onlyList?.join(',')}; ids: ${SCENARIOS.map((s) => s.id).join(', ')}`);

  console.log(`wsmod bench${quick ? ' (quick)' : ''}: ${String(mach['cpuModel'])}, ${nproc} cores, Node ${process.version}; servers on core ${SERVER_CORE}, generator on core ${GENERATOR_CORE}${pinning ? '' : ' (NOT pinned)'}`);
  console.log(`load average at start: ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);

  const results: Record<string, Partial<Record<ServerId, RunResult>>> = {};
  const allRuns: Record<string, Partial<Record<ServerId, RunResult[]>>> = {};
  const errors: Array<{ scenario: string; server: ServerId; message: string }> = [];
  const skipped: Array<{ scenario: string; reason: string }> = [];
  const serverInfo: Partial<Record<ServerId, Record<string, unknown>>> = {};
  const profiles: Record<string, unknown> = {};

  for (const scenario of scenarios) {
    console.log(scenario.title);
    if (scenario.skip !== undefined || scenario.run === undefined) {
      console.log(`  ${scenario.skip ?? 'skipped'}`);
      skipped.push({ scenario: scenario.id, reason: scenario.skip ?? 'skipped' });
      continue;
    }
    results[scenario.id] = {};
    allRuns[scenario.id] = {};
    const n = scenario.once === true || profileDir !== undefined ? 1 : rounds;
    for (let round = 0; round < n; round++) {
      const eligible = serverList.filter((id) => scenario.servers === undefined || scenario.servers.includes(id));
      const order = round % 2 === 0 ? eligible : [...eligible].reverse();
      for (const id of order) {
        const r = await runOne(scenario, id, n > 1 ? `r${round + 1} ` : '', profileDir, serverInfo, errors, profiles);
        if (r !== undefined) (allRuns[scenario.id]![id] ??= []).push(r);
      }
    }
    // A server with no valid run (starved by other work on a shared machine) gets one more try.
    if (scenario.invalid !== undefined && !quick && profileDir === undefined) {
      for (const id of serverList.filter((x) => scenario.servers === undefined || scenario.servers.includes(x))) {
        const runs = allRuns[scenario.id]![id] ?? [];
        if (runs.some((r) => scenario.invalid!(r) === undefined)) continue;
        const r = await runOne(scenario, id, 'retry ', profileDir, serverInfo, errors, profiles);
        if (r !== undefined) (allRuns[scenario.id]![id] ??= []).push(r);
      }
    }
    for (const id of serverList) {
      const runs = allRuns[scenario.id]![id];
      if (runs === undefined || runs.length === 0) continue;
      const best = scenario.best;
      const value = (r: RunResult): number => {
        const v = best === undefined ? NaN : r[best.key];
        return typeof v === 'number' && Number.isFinite(v) ? v : NaN;
      };
      for (const r of runs) {
        const why = scenario.invalid?.(r);
        if (why !== undefined) r['invalid'] = why;
      }
      const valid = runs.filter((r) => r['invalid'] === undefined);
      const candidates = valid.length > 0 ? valid : runs;
      let pick = candidates[0]!;
      for (const r of candidates) {
        if (Number.isNaN(value(r))) continue;
        if (Number.isNaN(value(pick)) || (best!.better === 'lower' ? value(r) < value(pick) : value(r) > value(pick))) pick = r;
      }
      results[scenario.id]![id] = pick;
    }
  }

  const rows = rowsFrom(results);
  const finishedAt = new Date();
  console.log(`\n${table(rows)}\n`);
  for (const s of skipped) console.log(`${s.scenario}: ${s.reason}`);
  const flagged = [...new Set(rows.flatMap((r) => r.flags))];
  for (const f of flagged) console.log(`warning: ${f}`);
  for (const e of errors) console.log(`error: ${e.scenario} / ${e.server}: ${e.message.split('\n')[0]}`);
  for (const [id, info] of Object.entries(serverInfo)) if (Object.keys(info).length > 0) console.log(`${id}: ${JSON.stringify(info)}`);

  if (profileList !== undefined) return; // a profiling run: no results files

  const resultsDir = join(root, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const stamp = finishedAt.toISOString().replace(/[:.]/g, '-');
  const doc = {
    date: finishedAt.toISOString(),
    mode: quick ? 'quick' : 'full',
    durationSec: Math.round((Date.now() - started) / 1000),
    machine: { ...mach, loadavgAtEnd: loadavg(), pinned: pinning, serverCore: SERVER_CORE, generatorCore: GENERATOR_CORE, nice: niceness ?? 0 },
    wsmod: gitDescribe(),
    servers: serverInfo,
    rows,
    markdown: markdownTable(rows),
    skipped,
    errors,
    warnings: flagged,
    rounds,
    results,
    allRuns,
  };
  const json = `${JSON.stringify(doc, null, 2)}\n`;
  const name = `${stamp}${quick ? '-quick' : ''}${partial ? '-partial' : ''}.json`;
  writeFileSync(join(resultsDir, name), json);
  // Only a complete run (every scenario, every server) becomes the latest results.
  if (!partial) {
    writeFileSync(join(resultsDir, 'latest.json'), json);
    writeFileSync(join(resultsDir, 'latest.svg'), svgChart(rows, ...chartTitles(quick ? 'quick' : 'full', finishedAt.toISOString(), mach)));
  }
  const wrote = partial ? `bench/results/${name} (a partial run: latest.json and latest.svg are left as they were)` : `bench/results/${name}, bench/results/latest.json, bench/results/latest.svg`;
  console.log(`\nwrote ${wrote} (${Math.round((Date.now() - started) / 1000)} s)`);
}

/** One run of a scenario against one server, in a fresh server process; undefined when it failed. */
async function runOne(
  scenario: Scenario,
  id: ServerId,
  prefix: string,
  profileDir: string | undefined,
  serverInfo: Partial<Record<ServerId, Record<string, unknown>>>,
  errors: Array<{ scenario: string; server: ServerId; message: string }>,
  profiles: Record<string, unknown>,
): Promise<RunResult | undefined> {
  const dir = profileDir === undefined ? undefined : mkdtempSync(join(profileDir, `${id}-${scenario.id}-`));
  let server: Server | undefined;
  let r: RunResult | undefined;
  const quietBefore = await waitQuiet(QUIET_WAIT_MS);
  const t0 = Date.now();
  try {
    server = await startServer(id, dir, scenario.env);
    serverInfo[id] ??= server.info;
    r = await scenario.run!(server);
    r['core0BusyBefore'] = quietBefore;
    const busy = r['core0Busy'];
    const cpu = r['serverCpu'];
    if (typeof busy === 'number' && typeof cpu === 'number') {
      r['core0Other'] = Math.max(0, busy - cpu - ((r['core0Irq'] as number | undefined) ?? 0));
    }
    const other = typeof r['core0Other'] === 'number' ? `, core 0 other ${Math.round(r['core0Other'] * 100)}%` : '';
    console.log(`  ${prefix}${SERVER_LABELS[id].padEnd(15)} ${summary(scenario.id, r)}${other}  [${((Date.now() - t0) / 1000).toFixed(1)} s]`);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    errors.push({ scenario: scenario.id, server: id, message });
    console.log(`  ${prefix}${SERVER_LABELS[id].padEnd(15)} FAILED: ${message.split('\n')[0]}`);
  } finally {
    await server?.child.stop();
  }
  if (dir !== undefined && r !== undefined && !scenario.id.includes('idle')) {
    const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
    // The main thread's profile: CPU.<date>.<time>.<pid>.<thread id 0>.<seq>.cpuprofile
    const file = files.find((f) => /\.0\.\d+\.cpuprofile$/.test(f)) ?? files[0];
    if (file === undefined) console.log('  (no CPU profile was written)');
    else {
      const p = summarizeProfile(join(dir, file), r.fromUs, r.toUs);
      profiles[`${id}/${scenario.id}`] = { file: join(dir, file), ...p };
      printProfile(`${SERVER_LABELS[id]}, ${scenario.id}`, p, join(dir, file));
    }
  }
  return r;
}

function summary(scenario: string, r: RunResult): string {
  const pct = (v: unknown): string => (typeof v === 'number' ? `${Math.round(v * 100)}%` : '-');
  const n = (v: unknown, d = 0): string => (typeof v === 'number' ? v.toLocaleString('en-US', { maximumFractionDigits: d }) : '-');
  const gen = `gen CPU ${pct(r.genCpu)}${typeof r.genCpu === 'number' && r.genCpu > 0.9 ? ' SATURATED' : ''}`;
  switch (scenario) {
    case 'paced':
    case 'latency':
      return `${n(r['cpuUsPerMsg'], 2)} µs CPU/msg, ${n(r['msgsPerSec'])} msg/s, p50 ${n(r['p50Us'])} µs, p99 ${n(r['p99Us'])} µs, server CPU ${pct(r['serverCpu'])}, ${gen}`;
    case 'flood':
      return `${n(r['msgsPerSec'])} msg/s, ${n(r['cpuUsPerMsg'], 2)} µs CPU/msg, server CPU ${pct(r['serverCpu'])}, ${gen}`;
    case 'large':
      return `${n(r['MBps'], 1)} MB/s, server CPU ${pct(r['serverCpu'])}, ${gen}`;
    case 'handshakes':
      return `${n(r['perSec'])} /s, ${n(r['cpuUsPerHandshake'], 1)} µs CPU each, server CPU ${pct(r['serverCpu'])}, errors ${n(r['errors'])}, ${gen}`;
    case 'deflate':
      return `${n(r['msgsPerSec'])} msg/s, ${n(r['cpuUsPerMsg'], 2)} µs CPU/msg, ${n(r['wireBytesIn'])} B in / ${n(r['wireBytesOut'])} B out per message on the wire, server CPU ${pct(r['serverCpu'])}, ${gen}`;
    case 'idle':
    case 'deflate-idle':
      return `${n(r['rssPerConn'])} B RSS/conn, ${n(r['heapExtPerConn'])} B heap+external/conn (opened in ${n(r['openMs'])} ms), ${gen}`;
    case 'fragments':
      return `${n(r['ms'], 1)} ms (runs: ${(r['times'] as number[]).map((t) => t.toFixed(0)).join(', ')}), peak +${n(r['peakMiB'], 2)} MiB RSS, ${gen}`;
    default:
      return JSON.stringify(r);
  }
}

function printProfile(label: string, p: ReturnType<typeof summarizeProfile>, file: string): void {
  console.log(`\n  CPU profile (${label}), measured window only: ${p.busyMs.toFixed(0)} ms busy, ${p.idleMs.toFixed(0)} ms idle; ${file}`);
  console.log('  self time by area:');
  for (const e of p.byArea) console.log(`    ${(e.share * 100).toFixed(1).padStart(5)}%  ${e.selfMs.toFixed(0).padStart(6)} ms  ${e.name}`);
  console.log('  top functions by self time:');
  for (const e of p.entries) console.log(`    ${(e.share * 100).toFixed(1).padStart(5)}%  ${e.selfMs.toFixed(0).padStart(6)} ms  ${e.name}  ${e.where}`);
  console.log('');
}

await main();
process.exit(0);
