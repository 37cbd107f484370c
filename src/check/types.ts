import type { DeflateParams } from '../protocol/permessage-deflate.ts';

/**
 * The model of a conformance case, after the Autobahn TestSuite's fuzzing client: a case drives a
 * fresh connection with raw frames, the client records what the server sends, and the verdict compares
 * the recorded events and the way the connection closed with the case's expectations.
 */

/** Verdict on what the server sent (Autobahn's `behavior`). */
export type Verdict = 'OK' | 'NON-STRICT' | 'FAILED' | 'INFORMATIONAL' | 'UNIMPLEMENTED';

/** Verdict on how the connection closed (Autobahn's `behaviorClose`). */
export type CloseVerdict = 'OK' | 'FAILED' | 'WRONG CODE' | 'UNCLEAN' | 'FAILED BY CLIENT' | 'INFORMATIONAL';

/** An event the client observed from the server. Text payloads are compared as UTF-8 bytes. */
export type ObservedEvent =
  | { readonly type: 'message'; readonly data: Buffer; readonly binary: boolean }
  | { readonly type: 'ping'; readonly data: Buffer }
  | { readonly type: 'pong'; readonly data: Buffer };

/**
 * An expected event: `['message', payload, binary]`, `['ping', payload]` or `['pong', payload]`.
 * A string payload stands for its UTF-8 bytes.
 */
export type ExpectedEvent =
  | readonly ['message', string | Buffer, boolean]
  | readonly ['ping', string | Buffer]
  | readonly ['pong', string | Buffer];

/** Acceptable event sequences by verdict; the first that matches the observed sequence exactly wins. */
export type Expectation = Partial<Record<'OK' | 'NON-STRICT' | 'INFORMATIONAL', readonly ExpectedEvent[]>>;

/** How the connection must end. */
export interface ExpectedClose {
  /** The client (this suite) starts the closing handshake; false: the server must fail/close it. */
  readonly closedByMe: boolean;
  /** Close codes the server may send (a close frame without a code is always accepted). */
  readonly closeCode: readonly number[];
  /** The closing handshake must complete (both close frames, then the server closes TCP). */
  readonly requireClean: boolean;
}

/** One frame to put on the wire, with full control over every header field. */
export interface FrameSpec {
  readonly opcode: number;
  readonly payload?: Buffer | string;
  /** Default true. */
  readonly fin?: boolean;
  /** RSV bits as a 3-bit number (Autobahn's convention): 4 = RSV1, 2 = RSV2, 1 = RSV3. Default 0. */
  readonly rsv?: number;
  /** Default true (a client must mask). */
  readonly mask?: boolean;
  /** Fixed masking key; default random. */
  readonly maskKey?: Buffer;
  /** Send the frame's bytes in chops of this many octets, each its own write. */
  readonly chopsize?: number;
  /** Pause between chops, ms (default: a macrotask turn so chops leave as separate segments). */
  readonly chopDelay?: number;
}

/** What a case can do with its connection. All sends are written in order. */
export interface CaseContext {
  /** Declare what the case expects; may be called at any time before the connection ends. */
  expect(expectation: Expectation, close: ExpectedClose): void;
  /** Put one frame on the wire. Resolves when its bytes are handed to the socket. */
  sendFrame(frame: FrameSpec): Promise<void>;
  /** Put arbitrary bytes on the wire, optionally in chops. */
  sendRaw(bytes: Buffer, options?: { readonly chopsize?: number; readonly chopDelay?: number }): Promise<void>;
  /**
   * A whole message, unfragmented, or fragmented into frames of `fragmentSize` payload bytes. When
   * permessage-deflate is in use the message is compressed (RSV1 on its first frame) and the
   * compressed payload is what gets fragmented, as Autobahn's client does; `compress: false` sends it
   * uncompressed. `compress: true` without a negotiated extension is an error.
   */
  sendMessage(payload: Buffer | string, binary: boolean, options?: SendMessageOptions): Promise<void>;
  /**
   * The compressed payload of a message (RFC 7692 §7.2.1, tail removed) for a case that builds its
   * own frames: compressed in turn with sendMessage, through the connection's compression context.
   * Rejects when permessage-deflate is not in use.
   */
  compress(payload: Buffer | string): Promise<Buffer>;
  /** The negotiated permessage-deflate parameters, when the case offered it and the server accepted. */
  readonly deflate: DeflateParams | undefined;
  /**
   * Start the closing handshake (closedByMe): a close frame with any code (valid or not) and reason.
   * Without a code, the reason bytes are the whole payload (a 1-octet close payload, case 7.3.2).
   * A close frame sent with sendFrame is just a frame: it does not count as the client's close.
   */
  sendClose(code?: number, reason?: Buffer | string): Promise<void>;
  /** Wait. */
  sleep(ms: number): Promise<void>;
  /** Drop the TCP connection after this many seconds if it is still open (Autobahn's killAfter). */
  killAfter(seconds: number): void;
  /** True while the connection is open: no close frame sent or received, TCP up (Autobahn's STATE_OPEN). */
  isOpen(): boolean;
  /** Events received so far, in order. */
  readonly received: readonly ObservedEvent[];
  /** Add a line to the case's log (shown in the report). */
  note(line: string): void;
  /** Milliseconds since the connection opened. */
  elapsed(): number;
}

/** Options of {@link CaseContext.sendMessage}. */
export interface SendMessageOptions {
  readonly fragmentSize?: number;
  /** Default: compress exactly when permessage-deflate is in use. */
  readonly compress?: boolean;
}

/**
 * permessage-deflate for a case (RFC 7692): the offers go in the opening handshake; a response that
 * accepts none of them fails the connection (FAILED); no extension in the response makes the case
 * UNIMPLEMENTED (the client closes with 1000 without running the case, as Autobahn's 12.x/13.x do).
 */
export interface DeflateCaseSpec {
  /** Extension offers in order of preference, each built with `deflateOffer` (sent comma-separated). */
  readonly offers: readonly string[];
}

/** One conformance case. */
export interface CaseDefinition {
  /** Autobahn's case id, e.g. "6.4.1". */
  readonly id: string;
  /** What the case sends. */
  readonly description: string;
  /** What a conformant server does. */
  readonly expectation: string;
  /** Drives the connection right after the handshake. */
  run(ctx: CaseContext): void | Promise<void>;
  /**
   * Called for every event from the server, after the default handling. Return false to keep the
   * event out of `received` (cases that count or time messages themselves, like 9.7.x).
   */
  onEvent?(ctx: CaseContext, event: ObservedEvent): boolean | void;
  /** Upper bound for the whole case, ms (default 10 s); the connection is dropped at the bound. */
  readonly timeout?: number;
  /** Report the case's duration (performance cases, group 9). */
  readonly reportTime?: boolean;
  /** Verdict when the case cannot be judged by events (e.g. purely informational). */
  readonly informational?: boolean;
  /** Offer permessage-deflate (groups 12 and 13); without it no extension is offered. */
  readonly deflate?: DeflateCaseSpec;
}

/** The outcome of one case. */
export interface CaseResult {
  readonly id: string;
  readonly description: string;
  readonly expectation: string;
  /** Final verdict: `behavior`, made FAILED when the close behaviour failed. */
  readonly verdict: Verdict;
  readonly behavior: Verdict;
  readonly behaviorClose: CloseVerdict;
  /** Why: which expectation matched or that none did; the close finding. */
  readonly result: string;
  readonly resultClose: string;
  readonly expected: Record<string, unknown>;
  readonly expectedClose: ExpectedClose | undefined;
  readonly observed: unknown[];
  readonly closedByMe: boolean;
  readonly droppedByMe: boolean;
  readonly wasClean: boolean;
  readonly remoteCloseCode: number | null;
  readonly remoteCloseReason: string | null;
  /** Case duration in ms (open to TCP close). */
  readonly duration: number;
  readonly reportTime: boolean;
  /** The wire log: handshake, then each write and read, hex-encoded (truncated for large payloads). */
  readonly wire: readonly WireEntry[];
  readonly notes: readonly string[];
}

/** One entry of the wire log. */
export interface WireEntry {
  /** ms since the case started */
  readonly t: number;
  readonly dir: 'tx' | 'rx' | 'info';
  /** Bytes on the wire, or an info line. */
  readonly text: string;
  readonly bytes?: number;
}

/** Close codes used by the cases (RFC 6455 §7.4.1). */
export { CloseCode as CLOSE } from '../protocol/close-codes.ts';
