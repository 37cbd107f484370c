/**
 * The messages between the host thread and a plugin worker (isolation mode `worker`). Only plain,
 * structured-cloneable data crosses: no sockets, no functions, no request objects. Bytes travel as
 * transferred ArrayBuffers (always fresh copies, never a pooled buffer); strings stay strings.
 *
 * One MessagePort per worker carries everything in order, so the per-session order of events
 * (open, messages, drain, close) and of the plugin's actions (send, close, ...) is preserved.
 */

import type { SendResult } from '../api.ts';
import type { HookName, ReadyStateName, SessionInfo, UpgradeInfo, Verdict } from '../runtime.ts';

/** `workerData` of a plugin worker. */
export interface WorkerBoot {
  readonly specifier: string;
  readonly baseDir: string;
  readonly options: unknown;
  readonly path: string;
}

/** An error as it crosses the thread boundary (class identity does not survive it). */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  /** A `WSMOD_ERR_*` code (or any string `code` property the error carried). */
  readonly code?: string;
}

/**
 * What the worker's onUpgrade decided: a {@link Verdict} without `data`. `ticket`: the accept carried
 * `data`, kept in the worker under it.
 */
export type PlainDecision =
  | (Omit<Extract<Verdict, { accept: true }>, 'data'> & { readonly ticket?: number })
  | Extract<Verdict, { accept: false }>;

export type LogLevelName = 'debug' | 'info' | 'warn' | 'error';

/** Host → worker. `rid`: a request the worker answers (with the same `rid`). */
export type HostToWorker =
  | { readonly t: 'upgrade'; readonly rid: number; readonly req: UpgradeInfo }
  /** The accepted upgrade's data (under `ticket`) will not be claimed: the handshake did not complete. */
  | { readonly t: 'discard'; readonly ticket: number }
  /** With `rid`: run onOpen and answer once it settles. Without: only create the session. */
  | {
      readonly t: 'open';
      readonly sid: string;
      readonly init: SessionInfo;
      /** The route's cap on the session's topics (the worker's runtime checks it, as the host's does). */
      readonly maxTopics: number;
      readonly ticket?: number;
      readonly rid?: number;
    }
  | { readonly t: 'msg'; readonly sid: string; readonly data: ArrayBuffer; readonly binary: boolean }
  | {
      readonly t: 'state';
      readonly sid: string;
      readonly result: SendResult;
      readonly bufferedAmount: number;
      readonly readyState: ReadyStateName;
    }
  | { readonly t: 'drain'; readonly sid: string; readonly bufferedAmount: number; readonly readyState: ReadyStateName }
  | { readonly t: 'close'; readonly sid: string; readonly code: number; readonly reason: string }
  /** Answer once every message posted before this one has been handled (see SETTLE in runtime.ts). */
  | { readonly t: 'settle'; readonly rid: number }
  | { readonly t: 'shutdown'; readonly rid: number }
  /** The host serves the plugin: run onStart (its host handle posts `pub` without a session). */
  | { readonly t: 'start' }
  /** Remote messages on `topic` may have been lost: run onBackplaneGap. */
  | { readonly t: 'gap'; readonly topic: string };

/** Worker → host. */
export type WorkerToHost =
  | {
      readonly t: 'ready';
      readonly name: string;
      readonly protocols: readonly string[] | undefined;
      readonly backpressurePolicy: 'drop' | 'close' | undefined;
      readonly hooks: readonly HookName[];
    }
  | { readonly t: 'loadFailed'; readonly error: SerializedError }
  /** The answer to a request (plugin failures are handled by the worker's runtime, not reported here). */
  | { readonly t: 'reply'; readonly rid: number; readonly decision?: PlainDecision }
  | { readonly t: 'send'; readonly sid: string; readonly data: string | ArrayBuffer; readonly binary: boolean }
  | { readonly t: 'close'; readonly sid: string; readonly code?: number; readonly reason?: string }
  | { readonly t: 'terminate'; readonly sid: string }
  | { readonly t: 'ping'; readonly sid: string; readonly data: string | ArrayBuffer }
  /** The plugin failed on this session (already logged): the host fails the connection with `code`. */
  | { readonly t: 'fail'; readonly sid: string; readonly code: number }
  | { readonly t: 'log'; readonly level: LogLevelName; readonly obj: object; readonly msg?: string }
  /** The session subscribes / unsubscribes a topic (validated and counted by the worker's runtime already). */
  | { readonly t: 'sub'; readonly sid: string; readonly topic: string }
  | { readonly t: 'unsub'; readonly sid: string; readonly topic: string }
  /**
   * A publish: by a session (`sid`; `exceptSelf` as the plugin asked) or by the host handle (no `sid`).
   * It travels on the same port as the session's sends, so their order is kept.
   */
  | {
      readonly t: 'pub';
      readonly sid?: string;
      readonly topic: string;
      readonly data: string | ArrayBuffer;
      readonly binary: boolean;
      readonly exceptSelf: boolean;
    };

/** Turns anything thrown into its plain form. */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return {
      name: err.name,
      message: err.message,
      ...(err.stack !== undefined && { stack: err.stack }),
      ...(typeof code === 'string' && { code }),
    };
  }
  return { name: 'Error', message: String(err) };
}

/** Rebuilds an Error from its plain form (stack and code included) for logging on the host side. */
export function deserializeError(plain: SerializedError): Error {
  const err = new Error(plain.message);
  err.name = plain.name;
  if (plain.stack !== undefined) err.stack = plain.stack;
  if (plain.code !== undefined) (err as Error & { code: string }).code = plain.code;
  return err;
}

/** Copies bytes into a fresh ArrayBuffer of their exact size, safe to transfer. */
export function copyToArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const copy = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(copy).set(bytes);
  return copy;
}
