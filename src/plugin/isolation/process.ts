/**
 * Isolation mode `process`: a websocketd-compatible runner. Each WebSocket connection gets its own
 * process; the process reads the client's messages on stdin and writes its own on stdout, so a service
 * can be written in any language. The runner is a plain {@link Plugin} wrapping the processes: the host
 * knows nothing about it.
 *
 * Wire mapping (like websocketd):
 * - line mode (default): each message from the client is written to stdin followed by "\n" (a message
 *   holding newlines is written as it is, plus the trailing newline); each line the process writes on
 *   stdout (split on "\n", a trailing "\r" stripped) is sent as a text message. Output that is not valid
 *   UTF-8 is sent with U+FFFD in place of the bad bytes.
 * - binary mode: message bytes go to stdin as they are, and every stdout chunk is sent as one binary
 *   message as it arrives (chunk boundaries are the kernel's, not the program's writes).
 *
 * Lifecycle: the process is spawned in onOpen (after the 101), with a CGI-style environment (see
 * {@link cgiEnvironment}) and nothing else of the host's environment but PATH. When it exits, its
 * remaining output is sent and the WebSocket is closed: 1000 for status 0, 1011 (logged) for another
 * status or a signal. When the WebSocket closes first, stdin is closed, then after `killGrace` the
 * process group gets SIGTERM, then after another `killGrace` SIGKILL.
 *
 * Backpressure, both ways:
 * - process → client: when `session.send` answers 'queued' (or 'dropped', in which case the message
 *   is kept and sent again), reading stdout stops until the host's onDrain; a fast producer then blocks
 *   on its full pipe instead of filling the host's memory.
 * - client → process: a plugin cannot pause the WebSocket, so input the process does not read waits in
 *   the stdin pipe's buffer, up to `maxInputBuffer` bytes; beyond it the session is closed with 1008
 *   ("process is not reading its input") and the process is terminated as above.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Logger } from '../../log.ts';
import type { Plugin, Session, UpgradeDecision, UpgradeRequest } from '../api.ts';
import { type ResolvedProcessOptions, resolveProcessOptions } from './process-options.ts';

/** Options of {@link createProcessPlugin}. Sizes in bytes, durations in ms. */
export interface ProcessPluginOptions {
  /** A string runs with `/bin/sh -c` (pipes allowed); an array is `[program, ...args]`, exec'd directly. */
  readonly command: string | readonly string[];
  /** Working directory of the processes; a relative program path (`./count`) resolves from it. */
  readonly baseDir: string;
  /** The route path (for logs and SCRIPT_NAME). */
  readonly path: string;
  readonly log: Logger;
  /** Binary mode instead of line mode. Default false. */
  readonly binary?: boolean;
  /** Concurrent processes of this route; over it onUpgrade refuses with 503. Default 64. */
  readonly maxProcesses?: number;
  /**
   * After the WebSocket closes, stdin is closed; after killGrace the process group gets SIGTERM, after
   * another killGrace SIGKILL. Default 2000.
   */
  readonly killGrace?: number;
  /** Extra environment variables (they win over the CGI ones). */
  readonly env?: Readonly<Record<string, string>>;
  /** The route's plugin options, passed as JSON in WSMOD_OPTIONS (absent when undefined). */
  readonly options?: unknown;
  /** Longest stdout line (line mode) before the session is closed with 1011. Default 1 MiB. */
  readonly maxLineLength?: number;
  /** Client input the process has not read yet, held in memory, before the session is closed with 1008. Default 1 MiB. */
  readonly maxInputBuffer?: number;
}

/** The plugin {@link createProcessPlugin} returns: a plain plugin plus its live process count. */
export interface ProcessPlugin extends Plugin<unknown> {
  /** Processes of this route that are running (spawned and not yet gone). */
  readonly processes: number;
}

/** The defaults of {@link ProcessPluginOptions}. */
export { PROCESS_DEFAULTS } from './process-options.ts';

/** Longest stderr line logged as one entry; longer output is logged in pieces of this size. */
const MAX_STDERR_LINE = 64 * 1024;
const NEWLINE = Buffer.from('\n');
const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';

type ResolvedOptions = ResolvedProcessOptions;

function headerString(v: string | readonly string[] | undefined): string | undefined {
  return v === undefined ? undefined : typeof v === 'string' ? v : v.join(', ');
}

/** `host[:port]` or `[v6][:port]` → [name, port]; the port defaults to 80. */
function splitHost(host: string): [string, string] {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end !== -1) {
      const rest = host.slice(end + 1);
      return [host.slice(1, end), rest.startsWith(':') && rest.length > 1 ? rest.slice(1) : '80'];
    }
  }
  const colon = host.lastIndexOf(':');
  if (colon !== -1 && host.indexOf(':') === colon) return [host.slice(0, colon), host.slice(colon + 1) || '80'];
  return [host, '80'];
}

/**
 * The environment of a session's process: PATH, the CGI variables websocketd sets, one HTTP_* per
 * request header, WSMOD_OPTIONS, then the route's `env` extras. Nothing else of the host's environment.
 * The `Proxy` header is left out (httpoxy: HTTP_PROXY would steer the process's HTTP clients).
 * QUERY_STRING is the parsed query re-encoded (the plugin API does not keep the raw request target).
 */
function cgiEnvironment(session: Session<unknown>, opts: Pick<ResolvedOptions, 'path' | 'env' | 'optionsJson'>): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? DEFAULT_PATH };
  for (const [name, raw] of Object.entries(session.headers)) {
    const value = headerString(raw);
    if (value === undefined || name.toLowerCase() === 'proxy') continue;
    env[`HTTP_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`] = value;
  }
  const query = session.query.toString();
  // SERVER_PORT is the listener's, never the client's Host header (which can say anything).
  const [serverName] = splitHost(headerString(session.headers['host']) ?? '');
  Object.assign(env, {
    REMOTE_ADDR: session.remoteAddress,
    REMOTE_HOST: session.remoteAddress,
    REMOTE_PORT: String(session.remotePort),
    QUERY_STRING: query,
    PATH_INFO: session.path,
    SCRIPT_NAME: opts.path,
    REQUEST_METHOD: 'GET',
    REQUEST_URI: query === '' ? session.path : `${session.path}?${query}`,
    SERVER_NAME: serverName,
    SERVER_PORT: String(session.localPort),
    SERVER_PROTOCOL: 'HTTP/1.1',
    SERVER_SOFTWARE: 'wsmod',
    GATEWAY_INTERFACE: 'websocketd-CGI/0.1',
    UNIQUE_ID: session.id,
  });
  if (session.secure) env['HTTPS'] = 'on';
  if (opts.optionsJson !== undefined) env['WSMOD_OPTIONS'] = opts.optionsJson;
  Object.assign(env, opts.env);
  return env;
}

/** One session's process and the plumbing between it and the WebSocket. */
class ProcessRun {
  readonly #session: Session<unknown>;
  readonly #opts: ResolvedOptions;
  readonly #onGone: (run: ProcessRun) => void;
  #child: ChildProcess | undefined;
  #pid: number | undefined;

  /** Messages read from stdout, waiting for the session to take them. */
  #pending: Array<string | Buffer> = [];
  /** Reading stdout is paused until onDrain. */
  #waitingDrain = false;
  #partial: Buffer[] = [];
  #partialLength = 0;
  #errPartial: Buffer[] = [];
  #errPartialLength = 0;

  #spawnFailed = false;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  #wsClosed = false;
  #finished = false;
  #terminating = false;
  #shutdown = false;
  #timers: NodeJS.Timeout[] = [];
  readonly done: Promise<void>;
  #resolveDone!: () => void;

  constructor(session: Session<unknown>, opts: ResolvedOptions, onGone: (run: ProcessRun) => void) {
    this.#session = session;
    this.#opts = opts;
    this.#onGone = onGone;
    this.done = new Promise<void>((r) => (this.#resolveDone = r));
  }

  /** The session id. */
  get id(): string {
    return this.#session.id;
  }

  get gone(): boolean {
    return this.#exit !== undefined;
  }

  get wsClosed(): boolean {
    return this.#wsClosed;
  }

  #logFields(): Record<string, unknown> {
    return { path: this.#opts.path, pid: this.#pid, session: this.#session.id };
  }

  /** Spawns the process. Returns false when spawn threw (nothing to wait for; the session is being closed). */
  start(): boolean {
    const o = this.#opts;
    let child: ChildProcess;
    try {
      child = spawn(o.program, o.args, {
        cwd: o.baseDir,
        env: cgiEnvironment(this.#session, o),
        stdio: ['pipe', 'pipe', 'pipe'],
        // Its own process group, so the signals reach a whole `sh -c 'a | b'` pipeline.
        detached: true,
      });
    } catch (err) {
      this.#spawnFailed = true;
      o.log.error({ ...this.#logFields(), program: o.program, err }, `process for ${o.path} could not be started`);
      this.#closeSession(1011, 'process could not be started');
      return false;
    }
    this.#child = child;
    this.#pid = child.pid;
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (this.#pid === undefined && !this.#spawnFailed) {
        // Spawning failed (ENOENT, EACCES...): 'close' follows and accounts for it.
        this.#spawnFailed = true;
        o.log.error({ ...this.#logFields(), program: o.program, code: err.code, err }, `process for ${o.path} could not be started: ${err.message}`);
        this.#closeSession(1011, 'process could not be started');
      } else {
        o.log.debug({ ...this.#logFields(), err }, 'process error');
      }
    });
    child.on('close', (code: number | null, signal: NodeJS.Signals | null) => this.#onProcessClose(code, signal));
    child.stdin!.on('error', (err: Error) => o.log.debug({ ...this.#logFields(), err }, 'process stdin error'));
    child.stdout!.on('data', (chunk: Buffer) => this.#onStdout(chunk));
    child.stderr!.on('data', (chunk: Buffer) => this.#onStderr(chunk));
    return true;
  }

  // ---- client → process ----

  input(data: Buffer): void {
    const stdin = this.#child?.stdin;
    if (stdin === undefined || stdin === null || !stdin.writable || this.#terminating) return;
    if (this.#session.readyState !== 'open') return; // closing (maybe for not reading): no more input
    stdin.write(data);
    if (!this.#opts.binary) stdin.write(NEWLINE);
    // The WebSocket cannot be paused from here: what the process does not read waits in the pipe's
    // buffer, and beyond the bound the session ends (documented policy).
    if (stdin.writableLength > this.#opts.maxInputBuffer) {
      this.#opts.log.warn(
        { ...this.#logFields(), buffered: stdin.writableLength },
        `process for ${this.#opts.path} is not reading its input: closing the session`,
      );
      this.#closeSession(1008, 'process is not reading its input');
    }
  }

  // ---- process → client ----

  #onStdout(chunk: Buffer): void {
    if (this.#wsClosed || this.#finished) return; // nobody to send to: drain the pipe so the process can go on
    if (this.#opts.binary) {
      this.#pending.push(chunk);
    } else {
      let start = 0;
      let nl = chunk.indexOf(0x0a);
      while (nl !== -1) {
        const piece = chunk.subarray(start, nl);
        const line = this.#partialLength > 0 ? Buffer.concat([...this.#partial, piece]) : piece;
        this.#partial = [];
        this.#partialLength = 0;
        this.#pending.push(lineText(line));
        start = nl + 1;
        nl = chunk.indexOf(0x0a, start);
      }
      if (start < chunk.length) {
        this.#partial.push(chunk.subarray(start));
        this.#partialLength += chunk.length - start;
        if (this.#partialLength > this.#opts.maxLineLength) {
          this.#opts.log.warn(
            { ...this.#logFields(), maxLineLength: this.#opts.maxLineLength },
            `process for ${this.#opts.path} wrote a line longer than maxLineLength: closing the session`,
          );
          this.#partial = [];
          this.#partialLength = 0;
          this.#pending = [];
          this.#closeSession(1011, 'process output line too long');
          return;
        }
      }
    }
    this.#flush();
  }

  /** Hands pending messages to the session until it pushes back; then stdout waits for onDrain. */
  #flush(): void {
    const session = this.#session;
    while (this.#pending.length > 0 && !this.#waitingDrain) {
      if (session.readyState !== 'open') {
        this.#pending = [];
        break;
      }
      const message = this.#pending[0]!;
      const result = session.send(message, { binary: this.#opts.binary });
      if (result === 'dropped') {
        // Not taken (the outbound queue is full): keep it and send it again after onDrain.
        this.#waitingDrain = session.readyState === 'open';
        if (!this.#waitingDrain) this.#pending = [];
        break;
      }
      this.#pending.shift();
      if (result === 'queued') this.#waitingDrain = true;
    }
    const stdout = this.#child?.stdout;
    if (this.#waitingDrain) {
      stdout?.pause();
    } else {
      if (stdout?.isPaused() === true) stdout.resume();
      this.#maybeFinish();
    }
  }

  drain(): void {
    if (!this.#waitingDrain) return;
    this.#waitingDrain = false;
    this.#flush();
  }

  #onStderr(chunk: Buffer): void {
    let start = 0;
    let nl = chunk.indexOf(0x0a);
    while (nl !== -1) {
      const piece = chunk.subarray(start, nl);
      const line = this.#errPartialLength > 0 ? Buffer.concat([...this.#errPartial, piece]) : piece;
      this.#errPartial = [];
      this.#errPartialLength = 0;
      this.#logStderr(line);
      start = nl + 1;
      nl = chunk.indexOf(0x0a, start);
    }
    if (start < chunk.length) {
      this.#errPartial.push(chunk.subarray(start));
      this.#errPartialLength += chunk.length - start;
      if (this.#errPartialLength >= MAX_STDERR_LINE) this.#flushStderr();
    }
  }

  #flushStderr(): void {
    if (this.#errPartialLength === 0) return;
    const line = Buffer.concat(this.#errPartial);
    this.#errPartial = [];
    this.#errPartialLength = 0;
    this.#logStderr(line);
  }

  #logStderr(line: Buffer): void {
    const text = lineText(line);
    this.#opts.log.warn({ ...this.#logFields(), stderr: text }, `process ${this.#pid ?? '?'} (${this.#opts.path}) stderr: ${text}`);
  }

  // ---- endings ----

  #onProcessClose(code: number | null, signal: NodeJS.Signals | null): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers = [];
    this.#exit = { code, signal };
    this.#flushStderr();
    if (!this.#opts.binary && this.#partialLength > 0 && !this.#wsClosed && !this.#finished) {
      // The last line, without its newline.
      this.#pending.push(lineText(Buffer.concat(this.#partial)));
      this.#partial = [];
      this.#partialLength = 0;
    }
    if (this.#wsClosed || this.#spawnFailed) {
      this.#opts.log.debug({ ...this.#logFields(), code, signal }, 'process ended');
    }
    this.#onGone(this);
    this.#resolveDone();
    this.#flush();
  }

  /** After the process is gone and its output is sent: close the WebSocket with its verdict. */
  #maybeFinish(): void {
    if (this.#exit === undefined || this.#pending.length > 0 || this.#waitingDrain || this.#wsClosed || this.#finished) return;
    this.#finished = true;
    if (this.#spawnFailed) return; // already closed with 1011
    const { code, signal } = this.#exit;
    if (this.#shutdown) {
      // Ended by the plugin's shutdown (host stopping or reloading) while the client was still there.
      this.#closeSession(1001, 'server shutting down');
      return;
    }
    if (code === 0) {
      this.#opts.log.debug({ ...this.#logFields(), code }, 'process exited');
      this.#closeSession(1000, '');
      return;
    }
    const how = signal !== null ? `was killed by ${signal}` : `exited with status ${String(code)}`;
    this.#opts.log.error({ ...this.#logFields(), code, signal }, `process for ${this.#opts.path} ${how}`);
    this.#closeSession(1011, `process ${how}`);
  }

  #closeSession(code: number, reason: string): void {
    if (this.#session.readyState === 'open') this.#session.close(code, reason);
  }

  /** The WebSocket is closed: discard output from now on and end the process. */
  sessionClosed(): void {
    this.#wsClosed = true;
    this.#pending = [];
    this.#partial = [];
    this.#partialLength = 0;
    if (this.#waitingDrain) {
      this.#waitingDrain = false;
      this.#child?.stdout?.resume();
    }
    this.terminate();
  }

  /** The plugin is shutting down: end the process; the session then closes with 1001. */
  shutdown(): void {
    this.#shutdown = true;
    this.terminate();
  }

  /** stdin closed now, SIGTERM after killGrace, SIGKILL after another; the timers end with the process. */
  terminate(): void {
    if (this.#terminating || this.#exit !== undefined || this.#child === undefined) return;
    this.#terminating = true;
    const stdin = this.#child.stdin;
    if (stdin !== null && stdin.writable) stdin.end();
    const grace = this.#opts.killGrace;
    this.#timers.push(
      setTimeout(() => {
        this.#signal('SIGTERM');
        this.#timers.push(setTimeout(() => this.#signal('SIGKILL'), grace));
      }, grace),
    );
  }

  #signal(signal: NodeJS.Signals): void {
    if (this.#exit !== undefined || this.#pid === undefined) return;
    const fields = { ...this.#logFields(), signal };
    if (signal === 'SIGKILL') this.#opts.log.warn(fields, `process ${this.#pid} (${this.#opts.path}) ignored SIGTERM: sending SIGKILL`);
    else this.#opts.log.debug(fields, `process ${this.#pid} (${this.#opts.path}) did not exit after stdin closed: sending ${signal}`);
    try {
      process.kill(-this.#pid, signal); // the whole process group
    } catch {
      try {
        this.#child?.kill(signal);
      } catch {
        // already gone
      }
    }
  }
}

/** The text of one stdout/stderr line: a trailing "\r" stripped, decoded as UTF-8. */
function lineText(line: Buffer): string {
  const end = line.length > 0 && line[line.length - 1] === 0x0d ? line.length - 1 : line.length;
  return line.toString('utf8', 0, end);
}

/**
 * A plugin that serves each connection with its own process (websocketd-compatible, see the module
 * doc). Its `processes` getter reads the number of live processes.
 */
export function createProcessPlugin(opts: ProcessPluginOptions): ProcessPlugin {
  const o = resolveProcessOptions(opts);
  /** Runs by session id, from onOpen until both the process and the WebSocket are gone. */
  const runs = new Map<string, ProcessRun>();
  let live = 0;
  let shuttingDown = false;

  const onGone = (run: ProcessRun): void => {
    live--;
    if (run.wsClosed) runs.delete(run.id);
  };

  const plugin: ProcessPlugin = {
    name: `process:${o.path}`,
    apiVersion: 1,
    // Lossless by design: a 'dropped' output message is kept and sent again after onDrain.
    backpressurePolicy: 'drop',
    get processes() {
      return live;
    },
    onUpgrade(req: UpgradeRequest<unknown>): UpgradeDecision {
      if (shuttingDown) return req.reject(503, 'service is shutting down');
      if (live >= o.maxProcesses) return req.reject(503, `too many processes on ${o.path}`);
      return req.accept();
    },
    onOpen(session) {
      // With a synchronous onUpgrade the host opens the session in the same tick, so this only trips
      // when something ran in between (an asynchronous host or wrapper).
      if (shuttingDown || live >= o.maxProcesses) {
        session.close(1013, 'too many processes');
        return;
      }
      const run = new ProcessRun(session, o, onGone);
      if (run.start()) {
        live++;
        runs.set(session.id, run);
      }
    },
    onMessage(session, data) {
      runs.get(session.id)?.input(data);
    },
    onDrain(session) {
      runs.get(session.id)?.drain();
    },
    onClose(session) {
      const run = runs.get(session.id);
      if (run === undefined) return;
      run.sessionClosed();
      if (run.gone) runs.delete(session.id);
    },
    async onShutdown() {
      shuttingDown = true;
      const all = [...runs.values()];
      for (const run of all) run.shutdown();
      await Promise.all(all.map((run) => run.done));
    },
  };
  return plugin;
}
