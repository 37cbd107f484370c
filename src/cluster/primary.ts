import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '../log.ts';
import { type PrimaryCommand, type WorkerCounters, isWire } from './messages.ts';
import { ClusterRelay, type RelayStats } from './relay.ts';

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** Worker processes to run (≥ 2; one process needs no cluster). */
  readonly workers: number;
  readonly logger: Logger;
  /** A worker's graceful shutdown may take this long (limits.shutdownDeadline); then it is killed. */
  readonly shutdownDeadline: number;
  /** Crash restarts wait `initial` ms, doubling per crash in a row up to `max`. Default 100 ms to 5 s. */
  readonly restartDelay?: { readonly initial: number; readonly max: number };
}

/** One worker as the primary sees it (docs/workers.md). */
export interface WorkerStats extends WorkerCounters {
  /** Its place, 0 to workers - 1; a restarted or reloaded worker takes over the slot. */
  readonly slot: number;
  /** node:cluster's worker id (unique for the primary's life). */
  readonly id: number;
  readonly pid: number | undefined;
  readonly state: WorkerState;
  /** Crash restarts of this slot so far. */
  readonly restarts: number;
  /** When its last counters arrived (ms since the epoch); 0 before the first report. */
  readonly reportedAt: number;
}

/** `starting` until it listens; `retiring` while a reload replaces it; `stopping` during shutdown. */
export type WorkerState = 'starting' | 'ready' | 'retiring' | 'stopping';

/** What the primary aggregates for the status/metrics views. */
export interface ClusterStats {
  readonly workers: readonly WorkerStats[];
  /**
   * Sums over every worker this primary ran: `connections` over the live ones; the message and byte
   * counters include what exited workers carried, so they only grow.
   */
  readonly total: WorkerCounters;
  /** Crash restarts, all slots. */
  readonly restarts: number;
  /** Rolling reloads completed. */
  readonly reloads: number;
  readonly relay: RelayStats;
}

/** The running cluster, as `wsmod serve --workers N` holds it. */
export interface Cluster {
  /** What the workers serve (as the first one to listen reported it). */
  readonly urls: readonly string[];
  /** The latest counters each worker reported (every second). */
  stats(): ClusterStats;
  /** Asks every worker for its counters now and resolves once all answered (or after 2 s). */
  refreshStats(): Promise<ClusterStats>;
  /** Rolling reload: resolves true once every worker was replaced, false if a new worker failed to start. */
  reload(): Promise<boolean>;
  /** Graceful shutdown of every worker; resolves with the exit status for the primary. */
  shutdown(): Promise<number>;
}

interface Record {
  readonly worker: Worker;
  readonly slot: Slot;
  /** Started by a reload to take over the slot once it listens (the slot's worker until then is another). */
  readonly candidate: boolean;
  state: WorkerState;
  counters: WorkerCounters;
  reportedAt: number;
  readyAt: number;
  readonly ready: Promise<boolean>;
  readonly exited: Promise<number | null>;
}

interface Slot {
  readonly index: number;
  current: Record | undefined;
  /** Crashes in a row (reset once a worker of the slot stayed up for STABLE_MS). */
  crashes: number;
  restarts: number;
  restartTimer: NodeJS.Timeout | undefined;
}

const ZERO: WorkerCounters = { connections: 0, messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0 };
/** A worker up this long after a crash resets the slot's backoff. */
const STABLE_MS = 10_000;
/** Added to shutdownDeadline before a worker that does not exit is killed. */
const KILL_MARGIN_MS = 5_000;
/** How long refreshStats waits for answers. */
const STATS_WAIT_MS = 2_000;

/**
 * Starts the primary of `wsmod serve --workers N`: forks the workers (each runs the same command and
 * so the same configuration, and shares the listeners through node:cluster), relays the cluster
 * backplane, restarts crashed workers with backoff, and keeps their counters. Resolves once every
 * worker listens; rejects (after stopping the others) if one fails to start.
 */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const log = options.logger;
  const delay = options.restartDelay ?? { initial: 100, max: 5_000 };
  // Buffers cross as bytes (a publish's payload), not as JSON arrays of numbers.
  cluster.setupPrimary({ serialization: 'advanced' });
  const relay = new ClusterRelay({ logger: log });
  const slots: Slot[] = Array.from({ length: options.workers }, (_, index) => ({ index, current: undefined, crashes: 0, restarts: 0, restartTimer: undefined }));
  const live = new Set<Record>();
  let exitedTotals: WorkerCounters = ZERO;
  let stopping = false;
  let reloads = 0;
  let seq = 0;
  const statsWaiters = new Map<number, { pending: Set<Record>; done: () => void }>();
  // Crashes before every first worker listened are a failed start, not something to retry forever.
  let restartable = false;
  let urls: readonly string[] | undefined;

  const fork = (slot: Slot, candidate = false): Record => {
    const worker = cluster.fork({ WSMOD_WORKER_SLOT: String(slot.index) });
    relay.attachWorker(worker);
    let markReady!: (ok: boolean) => void;
    const ready = new Promise<boolean>((resolve) => (markReady = resolve));
    const exited = new Promise<number | null>((resolve) => worker.once('exit', (code) => resolve(code)));
    const record: Record = { worker, slot, candidate, state: 'starting', counters: ZERO, reportedAt: 0, readyAt: 0, ready, exited };
    live.add(record);
    worker.on('message', (raw: unknown) => {
      if (isWire(raw, 'ready') && record.state === 'starting') {
        record.state = 'ready';
        record.readyAt = Date.now();
        markReady(true);
        urls ??= (raw as unknown as { urls: readonly string[] }).urls;
      } else if (isWire(raw, 'stats')) {
        const m = raw as unknown as { counters: WorkerCounters; seq?: number };
        record.counters = m.counters;
        record.reportedAt = Date.now();
        if (m.seq !== undefined) {
          const waiter = statsWaiters.get(m.seq);
          waiter?.pending.delete(record);
          if (waiter?.pending.size === 0) waiter.done();
        }
      }
    });
    // 'error' on a worker (a send to a dying process) must not take the primary down; 'exit' follows.
    worker.on('error', (err) => log.debug({ worker: worker.id, err: err.message }, 'worker channel error'));
    worker.once('exit', (code, signal) => {
      live.delete(record);
      relay.detach(`worker ${worker.id}`);
      const c = record.counters;
      exitedTotals = { connections: 0, messagesIn: exitedTotals.messagesIn + c.messagesIn, messagesOut: exitedTotals.messagesOut + c.messagesOut, bytesIn: exitedTotals.bytesIn + c.bytesIn, bytesOut: exitedTotals.bytesOut + c.bytesOut };
      for (const waiter of statsWaiters.values()) {
        waiter.pending.delete(record);
        if (waiter.pending.size === 0) waiter.done();
      }
      const failedCandidate = record.candidate && record.state === 'starting';
      markReady(false);
      if (slot.current === record) slot.current = undefined;
      // Expected exits; a reload's new worker that failed (the reload reports it); a failed first start.
      if (stopping || record.state === 'retiring' || failedCandidate || !restartable) return;
      log.error({ worker: worker.id, pid: worker.process.pid, slot: slot.index, code, signal }, 'worker exited unexpectedly');
      scheduleRestart(slot, record.readyAt);
    });
    if (!candidate) slot.current = record;
    return record;
  };

  const scheduleRestart = (slot: Slot, readyAt: number): void => {
    if (stopping || slot.restartTimer !== undefined) return;
    if (readyAt > 0 && Date.now() - readyAt >= STABLE_MS) slot.crashes = 0;
    const wait = Math.min(delay.initial * 2 ** slot.crashes, delay.max);
    slot.crashes++;
    log.warn({ slot: slot.index, in: wait, crashes: slot.crashes }, 'restarting the worker');
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (stopping) return;
      slot.restarts++;
      const record = fork(slot);
      void record.ready.then((ok) => {
        if (ok) log.info({ worker: record.worker.id, pid: record.worker.process.pid, slot: slot.index }, 'worker restarted');
      });
    }, wait);
  };

  const stopRecord = (record: Record, how: 'shutdown' | 'retire'): Promise<number | null> => {
    if (!live.has(record)) return record.exited;
    if (record.state === 'ready' && record.worker.isConnected()) {
      record.state = how === 'retire' ? 'retiring' : 'stopping';
      const command: PrimaryCommand = { wsmod: how };
      record.worker.send(command);
    } else {
      // Still loading: it has no handler for our commands yet, and nothing to drain.
      record.state = how === 'retire' ? 'retiring' : 'stopping';
      record.worker.process.kill('SIGTERM');
    }
    const timer = setTimeout(() => {
      log.warn({ worker: record.worker.id, pid: record.worker.process.pid }, 'worker did not exit in time: killing it');
      record.worker.process.kill('SIGKILL');
    }, options.shutdownDeadline + KILL_MARGIN_MS);
    return record.exited.finally(() => clearTimeout(timer));
  };

  const initial = slots.map((slot) => fork(slot));
  const started = await Promise.all(initial.map((r) => r.ready));
  if (started.includes(false)) {
    stopping = true;
    await Promise.all([...live].map((r) => stopRecord(r, 'shutdown')));
    throw new Error('a worker failed to start (its error is above)');
  }
  restartable = true;
  log.info({ workers: options.workers, pids: initial.map((r) => r.worker.process.pid) }, 'workers started');

  const stats = (): ClusterStats => {
    const workers = [...live]
      .map((r): WorkerStats => ({ slot: r.slot.index, id: r.worker.id, pid: r.worker.process.pid, state: r.state, restarts: r.slot.restarts, reportedAt: r.reportedAt, ...r.counters }))
      .sort((a, b) => a.slot - b.slot || a.id - b.id);
    const total = workers.reduce<WorkerCounters>(
      (t, w) => ({ connections: t.connections + w.connections, messagesIn: t.messagesIn + w.messagesIn, messagesOut: t.messagesOut + w.messagesOut, bytesIn: t.bytesIn + w.bytesIn, bytesOut: t.bytesOut + w.bytesOut }),
      exitedTotals,
    );
    return { workers, total, restarts: slots.reduce((n, s) => n + s.restarts, 0), reloads, relay: relay.stats };
  };

  let reloading: Promise<boolean> = Promise.resolve(true);
  const reloadOnce = async (): Promise<boolean> => {
    for (const slot of slots) {
      if (stopping) return false;
      const old = slot.current;
      // A slot waiting for a crash restart gets the new version from that restart.
      if (old === undefined || old.state !== 'ready') continue;
      const next = fork(slot, true);
      // The new worker listens before the old one stops accepting: no connection is refused.
      if (!(await next.ready)) {
        log.error({ slot: slot.index }, 'reload refused: the new worker failed to start; the running workers keep serving');
        return false;
      }
      slot.current = next;
      // The old worker may have crashed meanwhile: its restart is no longer wanted.
      clearTimeout(slot.restartTimer);
      slot.restartTimer = undefined;
      await stopRecord(old, 'retire');
    }
    reloads++;
    log.info({ workers: options.workers }, 'configuration reloaded (every worker replaced)');
    return true;
  };

  return {
    urls: urls ?? [],
    stats,
    refreshStats: () =>
      new Promise<ClusterStats>((resolve) => {
        const id = ++seq;
        const pending = new Set([...live].filter((r) => r.state === 'ready'));
        let timer: NodeJS.Timeout | undefined;
        const done = (): void => {
          clearTimeout(timer);
          statsWaiters.delete(id);
          resolve(stats());
        };
        if (pending.size === 0) {
          done();
          return;
        }
        statsWaiters.set(id, { pending, done });
        timer = setTimeout(done, STATS_WAIT_MS);
        for (const r of pending) r.worker.send({ wsmod: 'stats', seq: id } satisfies PrimaryCommand);
      }),
    reload: () => (reloading = reloading.then(reloadOnce, reloadOnce)),
    shutdown: async () => {
      stopping = true;
      for (const slot of slots) clearTimeout(slot.restartTimer);
      const codes = await Promise.all([...live].map((r) => stopRecord(r, 'shutdown')));
      return codes.every((c) => c === 0) ? 0 : 1;
    },
  };
}

/**
 * `wsmod serve --workers N` in the primary: starts the cluster, prints the URLs once, and maps the
 * signals: SIGTERM/SIGINT shut every worker down gracefully, then the primary exits (0, or 1 if a
 * worker failed to); a second one exits at once. SIGHUP rolls a reload through the workers. SIGUSR2
 * logs {@link ClusterStats} (SIGUSR1 is Node's inspector). Returns the cluster once every worker
 * listens; throws if one failed to start.
 */
export async function serveCluster(options: ClusterOptions): Promise<Cluster> {
  const log = options.logger;
  const running = await startCluster(options);
  // Printed once every worker listens: a client reading it may connect to any of them.
  for (const url of running.urls) process.stdout.write(`wsmod listening on ${url}\n`);
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting at once');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal, sessions: running.stats().total.connections }, 'shutting down every worker');
    void running.shutdown().then((status) => process.exit(status));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => {
    if (!stopping) void running.reload();
  });
  process.on('SIGUSR2', () => {
    void running.refreshStats().then((stats) => log.info({ stats }, 'cluster stats'));
  });
  return running;
}
