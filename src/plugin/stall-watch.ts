/**
 * Detects a plugin hook that blocks the event loop (a long synchronous loop stalls every inline
 * route): the plugin runtime marks each hook call in a SharedArrayBuffer — a sequence number, which
 * hook, and whether one is running: a few plain stores, nothing timed on the hot path — and a small
 * watchdog thread samples it. A hook still running under the same sequence number after
 * {@link STALL_THRESHOLD_MS} is reported back; the runtime logs it (rate-limited) and counts it once
 * the event loop is free again.
 */
import { Worker, isMainThread } from 'node:worker_threads';

/** How long one hook call may hold the event loop before it is reported. */
export const STALL_THRESHOLD_MS = 200;

/** [0] sequence number of the hook call in progress, [1] its code, [2] nesting depth (0: none running). */
const slots = new Int32Array(new SharedArrayBuffer(12));
let sequence = 0;

/** Marks the start of a hook call; `code` identifies the runtime and the hook (see {@link watchStalls}). */
export function enterHook(code: number): number {
  const depth = slots[2]!;
  if (depth === 0) {
    slots[0] = sequence = (sequence + 1) | 0;
    slots[1] = code;
  }
  slots[2] = depth + 1;
  return depth;
}

/** Marks the end of the hook call that {@link enterHook} returned `depth` for. */
export function leaveHook(depth: number): void {
  slots[2] = depth;
}

/** The watchdog: reports a sequence number seen busy for longer than the threshold, once. */
const WATCHDOG = `
const { parentPort, workerData } = require('node:worker_threads');
const slots = new Int32Array(workerData.buffer);
const threshold = workerData.threshold;
let seen = -1, since = 0, reported = -1;
setInterval(() => {
  const now = Date.now();
  if (Atomics.load(slots, 2) === 0) { seen = -1; return; }
  const seq = Atomics.load(slots, 0);
  if (seq !== seen) { seen = seq; since = now; return; }
  if (seq !== reported && now - since >= threshold) {
    reported = seq;
    parentPort.postMessage({ code: Atomics.load(slots, 1), ms: now - since });
  }
}, Math.max(10, Math.floor(threshold / 4)));
`;

let watchdog: Worker | undefined;
let onStall: ((code: number, ms: number) => void) | undefined;

/**
 * Starts the watchdog (once per process, main thread only: a plugin worker that blocks stalls only its
 * own thread) and sets where its reports go. The watchdog does not keep the process alive.
 */
export function watchStalls(report: (code: number, ms: number) => void): void {
  onStall = report;
  if (watchdog !== undefined || !isMainThread) return;
  watchdog = new Worker(WATCHDOG, {
    eval: true,
    workerData: { buffer: slots.buffer, threshold: STALL_THRESHOLD_MS },
    name: 'wsmod stall watchdog',
    execArgv: [],
  });
  watchdog.on('message', (m: { code: number; ms: number }) => onStall?.(m.code, m.ms));
  // A watchdog that cannot run costs the detection, nothing else.
  watchdog.on('error', () => (watchdog = undefined));
  // After the listeners: adding a 'message' listener refs the worker's port again.
  watchdog.unref();
}
