/**
 * The load generator, one process per scenario run, pinned to its own core by the orchestrator.
 * Designed to cost much less than any server it drives:
 *
 * - raw `net` sockets reading into one shared buffer (`onread`), so a read allocates nothing;
 * - frames built once before the run (masked, non-zero keys) and written as they are, one prebuilt
 *   batch per write in the flood scenarios;
 * - responses parsed by frame headers only (bench/frames.ts FrameCounter): payloads are skipped.
 *
 * It reports its own CPU use (process.cpuUsage over the measured window) so a saturated generator is
 * visible. Config: one JSON argument. Events: JSON lines on stdout. Commands: lines on stdin.
 */
import { type Socket, connect } from 'node:net';
import { createInterface } from 'node:readline';
import { DEFLATE_OFFER, FrameCounter, Op, closeFrame, compressedFrame, fragmentedMessage, frameBatch, jsonText, maskedFrame, upgradeRequest } from './frames.ts';

export type GeneratorConfig =
  | { readonly mode: 'paced'; readonly port: number; readonly path: string; readonly conns: number; readonly ratePerConn: number; readonly size: number; readonly warmupMs: number; readonly durationMs: number }
  | { readonly mode: 'flood'; readonly port: number; readonly path: string; readonly conns: number; readonly size: number; readonly binary: boolean; readonly window: number; readonly batch: number; readonly warmupMs: number; readonly durationMs: number; readonly deflate?: boolean }
  | { readonly mode: 'handshake'; readonly port: number; readonly path: string; readonly concurrency: number; readonly warmupMs: number; readonly durationMs: number }
  | { readonly mode: 'idle'; readonly port: number; readonly path: string; readonly conns: number; readonly concurrency: number; readonly holdMs: number; readonly deflate?: boolean; readonly prime?: number }
  | { readonly mode: 'fragments'; readonly port: number; readonly path: string; readonly size: number; readonly fragment: number; readonly repTimeoutMs: number };

/** Hard bounds, whatever the config says. */
const MAX_CONNS = 20_000;
const MAX_MS = 10 * 60_000;
const CONNECT_TIMEOUT_MS = 60_000;

/** Set when the run is over: connections closing from then on are expected. */
let finishing = false;

/** One buffer all sockets read into: every read is consumed synchronously in the callback. */
const READ_BUF = Buffer.allocUnsafe(256 * 1024);

function emit(obj: object): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function fail(message: string): never {
  emit({ event: 'error', message });
  process.exit(1);
}

/** CPU use of this process between two cpuUsage() readings, as a fraction of one core. */
function cpuShare(since: NodeJS.CpuUsage, wallMs: number): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000 / wallMs;
}

/** A WebSocket client on a raw socket: handshake, then server frames to a FrameCounter. */
class Conn {
  readonly socket: Socket;
  open = false;
  #head = '';
  readonly #counter: FrameCounter;

  constructor(
    port: number,
    request: Buffer,
    /** An extension the 101 must accept, else the connection fails. */
    requireExtension: string | undefined,
    readonly index: number,
    onOpen: (c: Conn) => void,
    onFrame: (c: Conn, opcode: number, fin: boolean, length: number) => void,
    afterRead: ((c: Conn) => void) | undefined,
    onFail: (c: Conn, why: string) => void,
  ) {
    this.#counter = new FrameCounter((opcode, fin, length, control) => {
      if (opcode === Op.PING) this.socket.write(maskedFrame(Op.PONG, control!));
      else if (opcode === Op.CLOSE && !finishing) {
        onFail(this, `the server closed the connection: ${control!.length >= 2 ? control!.readUInt16BE(0) : 1005} ${control!.subarray(2).toString()}`);
      } else onFrame(this, opcode, fin, length);
    });
    this.socket = connect({
      port,
      host: '127.0.0.1',
      noDelay: true,
      onread: {
        buffer: READ_BUF,
        callback: (n: number, buf: Uint8Array) => {
          const b = buf as Buffer;
          if (this.open) this.#counter.push(b, 0, n);
          else {
            this.#head += b.toString('latin1', 0, n);
            const end = this.#head.indexOf('\r\n\r\n');
            if (end === -1) {
              if (this.#head.length > 16384) onFail(this, 'response head too large');
              return true;
            }
            if (!this.#head.startsWith('HTTP/1.1 101')) {
              onFail(this, `handshake refused: ${this.#head.slice(0, this.#head.indexOf('\r\n'))}`);
              return true;
            }
            if (requireExtension !== undefined && !new RegExp(`\r\nsec-websocket-extensions:[^\r\n]*${requireExtension}`, 'i').test(this.#head.slice(0, end))) {
              onFail(this, `the server did not accept ${requireExtension}`);
              return true;
            }
            const rest = this.#head.length - (end + 4);
            this.#head = '';
            this.open = true;
            onOpen(this);
            if (rest > 0) this.#counter.push(b, n - rest, n);
          }
          afterRead?.(this);
          return true;
        },
      },
    });
    this.socket.on('connect', () => this.socket.write(request));
    this.socket.on('error', (err: Error) => {
      if (!finishing) onFail(this, err.message);
    });
    this.socket.on('close', () => {
      if (!this.open) onFail(this, 'closed during the handshake');
      else if (!finishing) onFail(this, 'the server closed the connection');
    });
  }
}

/** Opens `n` connections, at most `concurrency` handshakes at a time; fails the run if any fails. */
function openAll(
  port: number,
  path: string,
  n: number,
  concurrency: number,
  onFrame: (c: Conn, opcode: number, fin: boolean, length: number) => void,
  afterRead?: (c: Conn) => void,
  deflate = false,
): Promise<Conn[]> {
  const request = upgradeRequest(port, path, undefined, deflate ? DEFLATE_OFFER : undefined);
  const conns: Conn[] = [];
  let started = 0;
  let opened = 0;
  return new Promise((resolve) => {
    const timer = setTimeout(() => fail(`opened ${opened} of ${n} connections in ${CONNECT_TIMEOUT_MS} ms`), CONNECT_TIMEOUT_MS);
    const next = (): void => {
      if (started >= n) return;
      const i = started++;
      conns.push(
        new Conn(
          port,
          request,
          deflate ? 'permessage-deflate' : undefined,
          i,
          () => {
            opened++;
            if (opened === n) {
              clearTimeout(timer);
              resolve(conns);
            } else next();
          },
          onFrame,
          afterRead,
          (_c, why) => fail(`connection ${i}: ${why}`),
        ),
      );
    };
    for (let k = 0; k < Math.min(concurrency, n); k++) next();
  });
}

/** Percentile of sorted samples. */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Warm-up, then the measured window; `onStart`/`onEnd` run at its edges. Resolves at its end. */
function window(warmupMs: number, durationMs: number, onStart: () => void, onEnd: () => void): Promise<void> {
  return new Promise((resolve) => {
    setTimeout(() => {
      onStart();
      emit({ event: 'measure-start' });
      setTimeout(() => {
        emit({ event: 'measure-end' });
        onEnd();
        resolve();
      }, Math.min(durationMs, MAX_MS));
    }, Math.min(warmupMs, MAX_MS));
  });
}

/** Resolves when `done()` holds or after `ms`. */
async function settle(done: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (!done() && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  return done();
}

/**
 * Paced echo: `conns` connections, each sending `ratePerConn` text messages of `size` bytes a second,
 * spread evenly (a round-robin cursor driven by a 1 ms timer that catches up to the schedule). Up to
 * 64 messages may be in flight per connection; send times are kept per connection, so each echo gives
 * a round-trip time.
 */
async function paced(cfg: Extract<GeneratorConfig, { mode: 'paced' }>): Promise<void> {
  const n = Math.min(cfg.conns, MAX_CONNS);
  const RING = 64;
  const sendTimes = new Float64Array(n * RING);
  const head = new Uint32Array(n);
  const tail = new Uint32Array(n);
  let measuring = false;
  let received = 0;
  let mStart = Infinity;
  const cap = Math.min(5_000_000, Math.ceil(n * cfg.ratePerConn * (cfg.durationMs / 1000) * 1.5) + 1000);
  const samples = new Float64Array(cap);
  let count = 0;
  const conns = await openAll(cfg.port, cfg.path, n, 200, (c, opcode) => {
    if (opcode !== Op.TEXT && opcode !== Op.BINARY) return;
    const i = c.index;
    if (tail[i]! === head[i]!) return;
    const t0 = sendTimes[i * RING + (head[i]! % RING)]!;
    head[i]!++;
    if (measuring) {
      received++;
      if (t0 >= mStart && count < cap) samples[count++] = performance.now() - t0;
    }
  });
  emit({ event: 'ready', conns: conns.length });
  const payload = Buffer.alloc(cfg.size, 'x');
  const frames = Array.from({ length: 16 }, () => maskedFrame(Op.TEXT, payload));
  const perMs = (n * cfg.ratePerConn) / 1000;
  const maxBurst = Math.max(1, Math.ceil(perMs * 20)); // never catch up more than 20 ms of schedule at once
  let sent = 0;
  let scheduled = 0;
  let skipped = 0;
  let cursor = 0;
  const t0 = performance.now();
  const timer = setInterval(() => {
    let due = Math.floor((performance.now() - t0) * perMs) - scheduled;
    if (due > maxBurst) {
      skipped += due - maxBurst;
      scheduled += due - maxBurst;
      due = maxBurst;
    }
    for (let k = 0; k < due; k++) {
      const i = cursor;
      cursor = cursor + 1 === n ? 0 : cursor + 1;
      scheduled++;
      if (tail[i]! - head[i]! >= RING) {
        skipped++;
        continue;
      }
      sendTimes[i * RING + (tail[i]! % RING)] = performance.now();
      tail[i]!++;
      conns[i]!.socket.write(frames[sent & 15]!);
      sent++;
    }
  }, 1);
  let cpu = process.cpuUsage();
  let wall = 0;
  let skippedAtStart = 0;
  let sentAtStart = 0;
  let skippedInWindow = 0;
  let sentInWindow = 0;
  await window(
    cfg.warmupMs,
    cfg.durationMs,
    () => {
      measuring = true;
      mStart = performance.now();
      cpu = process.cpuUsage();
      skippedAtStart = skipped;
      sentAtStart = sent;
    },
    () => {
      measuring = false;
      wall = performance.now() - mStart;
      skippedInWindow = skipped - skippedAtStart;
      sentInWindow = sent - sentAtStart;
    },
  );
  const genCpu = cpuShare(cpu, wall);
  clearInterval(timer);
  const drained = await settle(() => conns.every((c) => tail[c.index] === head[c.index]), 2000);
  const lat = samples.subarray(0, count).sort();
  emit({
    event: 'result',
    windowMs: wall,
    sent: sentInWindow,
    received,
    skipped: skippedInWindow,
    drained,
    latencyUs: { p50: percentile(lat, 50) * 1000, p90: percentile(lat, 90) * 1000, p99: percentile(lat, 99) * 1000, max: (lat[lat.length - 1] ?? NaN) * 1000, samples: count },
    genCpu,
  });
}

/**
 * Flood: each connection keeps `window` messages in flight, sent in prebuilt batches of `batch`
 * frames (one write per batch), topping up as echoes come back.
 */
async function flood(cfg: Extract<GeneratorConfig, { mode: 'flood' }>): Promise<void> {
  const n = Math.min(cfg.conns, MAX_CONNS);
  const payload = cfg.binary ? Buffer.from(Array.from({ length: cfg.size }, (_, i) => (i * 131 + 7) & 0xff)) : Buffer.alloc(cfg.size, 'x');
  const opcode = cfg.binary ? Op.BINARY : Op.TEXT;
  // Compressed messages all differ (64 distinct ones, 256 KiB of text, cycled), so a compressor that
  // keeps its context cannot just point back at the previous copy of the same message.
  const batches =
    cfg.deflate === true
      ? Array.from({ length: 16 }, (_, b) => frameBatch(cfg.batch, opcode, (i) => jsonText(cfg.size, b * cfg.batch + i), true))
      : [frameBatch(cfg.batch, opcode, payload)];
  let next = 0;
  const outstanding = new Int32Array(n);
  let running = false;
  let measuring = false;
  let messages = 0;
  let bytes = 0;
  const topUp = (c: Conn): void => {
    if (!running) return;
    while (outstanding[c.index]! + cfg.batch <= cfg.window) {
      outstanding[c.index]! += cfg.batch;
      c.socket.write(batches[next]!);
      next = next + 1 === batches.length ? 0 : next + 1;
    }
  };
  const conns = await openAll(
    cfg.port,
    cfg.path,
    n,
    100,
    (c, opcode, _fin, length) => {
      if (opcode !== Op.TEXT && opcode !== Op.BINARY) return;
      outstanding[c.index]!--;
      if (measuring) {
        messages++;
        bytes += length;
      }
    },
    topUp,
    cfg.deflate === true,
  );
  emit({ event: 'ready', conns: conns.length, wireBytesPerMessage: batches.reduce((sum, b) => sum + b.length, 0) / (batches.length * cfg.batch) });
  running = true;
  for (const c of conns) topUp(c);
  let cpu = process.cpuUsage();
  let mStart = 0;
  let wall = 0;
  await window(
    cfg.warmupMs,
    cfg.durationMs,
    () => {
      measuring = true;
      mStart = performance.now();
      cpu = process.cpuUsage();
    },
    () => {
      measuring = false;
      running = false;
      wall = performance.now() - mStart;
    },
  );
  const genCpu = cpuShare(cpu, wall);
  const drained = await settle(() => outstanding.every((o) => o === 0), 3000);
  emit({ event: 'result', windowMs: wall, messages, bytes, drained, genCpu });
}

/**
 * Handshakes: `concurrency` clients in a loop, each connecting, sending the upgrade request, reading
 * the 101, then closing politely (a masked close frame, sent with the client's FIN) and starting over
 * once the server's close frame and FIN are in.
 */
async function handshakes(cfg: Extract<GeneratorConfig, { mode: 'handshake' }>): Promise<void> {
  const request = upgradeRequest(cfg.port, cfg.path);
  const close = closeFrame(1000);
  let running = true;
  let measuring = false;
  let done = 0;
  let refused = 0;
  let errors = 0;
  let inflight = 0;
  const launch = (): void => {
    if (!running) return;
    inflight++;
    let headText = '';
    let upgraded = false;
    const socket = connect({
      port: cfg.port,
      host: '127.0.0.1',
      noDelay: true,
      onread: {
        buffer: READ_BUF,
        callback: (n: number, buf: Uint8Array) => {
          if (upgraded) return true;
          headText += (buf as Buffer).toString('latin1', 0, n);
          if (headText.indexOf('\r\n\r\n') === -1) return true;
          upgraded = true;
          if (headText.startsWith('HTTP/1.1 101')) {
            if (measuring) done++;
            // The close frame and our FIN together: the server answers with its close frame and FIN at
            // once, nothing waits on a delayed ACK, and TIME_WAIT stays on the client's side.
            socket.end(close);
          } else {
            refused++;
            socket.destroy();
          }
          return true;
        },
      },
    });
    socket.setTimeout(10_000, () => socket.destroy());
    socket.on('connect', () => socket.write(request));
    socket.on('error', () => errors++);
    socket.on('close', () => {
      inflight--;
      launch();
    });
  };
  for (let k = 0; k < cfg.concurrency; k++) launch();
  emit({ event: 'ready' });
  let cpu = process.cpuUsage();
  let mStart = 0;
  let wall = 0;
  await window(
    cfg.warmupMs,
    cfg.durationMs,
    () => {
      measuring = true;
      mStart = performance.now();
      cpu = process.cpuUsage();
      errors = 0;
      refused = 0;
    },
    () => {
      measuring = false;
      running = false;
      wall = performance.now() - mStart;
    },
  );
  const genCpu = cpuShare(cpu, wall);
  await settle(() => inflight === 0, 5000);
  emit({ event: 'result', windowMs: wall, handshakes: done, refused, errors, genCpu });
}

/** Idle: opens `conns` connections, reports, and holds them until told to close (or `holdMs`). */
async function idle(cfg: Extract<GeneratorConfig, { mode: 'idle' }>, commands: AsyncIterator<string>): Promise<void> {
  const n = Math.min(cfg.conns, MAX_CONNS);
  const t0 = performance.now();
  const cpu = process.cpuUsage();
  let echoed = 0;
  const conns = await openAll(
    cfg.port,
    cfg.path,
    n,
    cfg.concurrency,
    (_c, opcode) => {
      if (opcode === Op.TEXT || opcode === Op.BINARY) echoed++;
    },
    undefined,
    cfg.deflate === true,
  );
  if (cfg.prime !== undefined) {
    // One message each (and its echo), so per-connection compression state exists where a server keeps it.
    const text = jsonText(cfg.prime);
    const frame = cfg.deflate === true ? compressedFrame(Op.TEXT, text) : maskedFrame(Op.TEXT, text);
    for (const c of conns) c.socket.write(frame);
    if (!(await settle(() => echoed >= n, 60_000))) fail(`only ${echoed} of ${n} priming messages were echoed`);
  }
  const ms = performance.now() - t0;
  emit({ event: 'opened', conns: conns.length, ms, genCpu: cpuShare(cpu, ms) });
  const hold = setTimeout(() => process.exit(0), Math.min(cfg.holdMs, MAX_MS));
  for (;;) {
    const cmd = await commands.next();
    if (cmd.done === true || cmd.value === 'close' || cmd.value === 'exit') break;
  }
  clearTimeout(hold);
  finishing = true;
  for (const c of conns) c.socket.destroy();
  emit({ event: 'result', closed: conns.length });
}

/**
 * One message of `size` bytes in `fragment`-byte fragments over one connection, prebuilt; on each
 * `go` it is written at once and the time until the whole echo is back is reported.
 */
async function fragments(cfg: Extract<GeneratorConfig, { mode: 'fragments' }>, commands: AsyncIterator<string>): Promise<void> {
  const payload = Buffer.from(Array.from({ length: cfg.size }, (_, i) => (i * 31 + 11) & 0xff));
  const wire = fragmentedMessage(Op.BINARY, payload, cfg.fragment);
  let waiting: ((length: number) => void) | undefined;
  const [conn] = await openAll(cfg.port, cfg.path, 1, 1, (_c, opcode, fin, length) => {
    if ((opcode === Op.BINARY || opcode === Op.CONTINUATION) && fin) waiting?.(length);
  });
  emit({ event: 'ready', wireBytes: wire.length, frames: Math.ceil(cfg.size / cfg.fragment) });
  for (;;) {
    const cmd = await commands.next();
    if (cmd.done === true || cmd.value !== 'go') break;
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    const length = await new Promise<number>((resolve) => {
      const timer = setTimeout(() => fail(`no echo within ${cfg.repTimeoutMs} ms`), Math.min(cfg.repTimeoutMs, MAX_MS));
      waiting = (len) => {
        clearTimeout(timer);
        resolve(len);
      };
      conn!.socket.write(wire);
    });
    const ms = performance.now() - t0;
    if (length !== cfg.size) fail(`echo of ${length} bytes, expected ${cfg.size}`);
    emit({ event: 'rep', ms, genCpu: cpuShare(cpu, ms) });
  }
  finishing = true;
  conn!.socket.destroy();
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as GeneratorConfig;
  const lines = createInterface({ input: process.stdin });
  const commands = lines[Symbol.asyncIterator]();
  // The orchestrator gone: stop at once.
  process.stdin.on('end', () => process.exit(0));
  const overall = setTimeout(() => fail('generator ran past its time bound'), MAX_MS + 60_000);
  overall.unref();
  switch (cfg.mode) {
    case 'paced':
      await paced(cfg);
      break;
    case 'flood':
      await flood(cfg);
      break;
    case 'handshake':
      await handshakes(cfg);
      break;
    case 'idle':
      await idle(cfg, commands);
      break;
    case 'fragments':
      await fragments(cfg, commands);
      break;
    default:
      fail(`unknown mode ${(cfg as { mode: string }).mode}`);
  }
  finishing = true;
  process.exit(0);
}

await main();
