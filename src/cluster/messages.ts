/**
 * What the `--workers` primary and its workers say to each other over cluster IPC. Every message
 * carries `wsmod` (its kind), so ours are told apart from Node's own cluster messages and from
 * whatever a plugin sends with `process.send`. The channel uses `serialization: 'advanced'`, so a
 * publish's Buffer crosses as bytes, not as JSON.
 */
import type { TopicMessage } from '../pubsub/backplane.ts';

/** Counters a worker reports to the primary (its host's traffic and open sessions). */
export interface WorkerCounters {
  readonly connections: number;
  readonly messagesIn: number;
  readonly messagesOut: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** Backplane traffic, both directions (worker → primary → other workers). */
export type BackplaneWire =
  | { readonly wsmod: 'bp'; readonly op: 'sub' | 'unsub'; readonly topic: string }
  | { readonly wsmod: 'bp'; readonly op: 'pub'; readonly message: TopicMessage }
  /** Worker → primary: it dropped publishes on these topics; primary → worker: these topics may have missed messages. */
  | { readonly wsmod: 'bp'; readonly op: 'gap'; readonly topics: readonly string[]; readonly reason: string }
  | { readonly wsmod: 'bp'; readonly op: 'close' };

/** Worker → primary: lifecycle and counters. */
export type WorkerReport =
  /** Every listener is up; `urls` are the addresses it serves (the primary prints them once). */
  | { readonly wsmod: 'ready'; readonly urls: readonly string[] }
  /** Periodic counters, or the answer to a `stats` request (`seq` set). */
  | { readonly wsmod: 'stats'; readonly counters: WorkerCounters; readonly seq?: number };

/** Primary → worker: lifecycle and requests. */
export type PrimaryCommand =
  /** Graceful shutdown: every session gets 1001, then the worker exits 0. */
  | { readonly wsmod: 'shutdown' }
  /** Replaced in a rolling reload: stop accepting (the successor listens already), then shut down. */
  | { readonly wsmod: 'retire' }
  /** Report counters now, answering with this `seq`. */
  | { readonly wsmod: 'stats'; readonly seq: number };

/** True for a message of ours with this kind (untrusted shape: anything may arrive on the channel). */
export function isWire<K extends string>(message: unknown, kind: K): message is { readonly wsmod: K } & Record<string, unknown> {
  return typeof message === 'object' && message !== null && (message as { wsmod?: unknown }).wsmod === kind;
}

/** One end of an IPC channel: `process` in a worker, a cluster `Worker` in the primary. */
export interface IpcEndpoint {
  /** Queues `message`; `callback` runs once it is written (or failed). Returns false when the channel is backed up or closed. */
  send(message: unknown, callback: (err: Error | null) => void): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
  /** False once the channel is closed. */
  readonly connected: boolean;
}

/** This process's IPC channel (a cluster worker's, toward the primary); throws when it has none. */
export function processChannel(): IpcEndpoint {
  const send = process.send?.bind(process);
  if (send === undefined) throw new Error('no IPC channel: this runs in a cluster worker (wsmod serve --workers N)');
  return {
    send: (message, callback) => send(message, undefined, undefined, callback),
    on: (event, listener) => process.on(event, listener),
    off: (event, listener) => process.off(event, listener),
    get connected() {
      return process.connected;
    },
  };
}
