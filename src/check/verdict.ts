import type {
  CaseDefinition,
  CaseResult,
  CloseVerdict,
  Expectation,
  ExpectedClose,
  ExpectedEvent,
  ObservedEvent,
  Verdict,
  WireEntry,
} from './types.ts';

/** Everything recorded about one case's connection. */
export interface CaseRecord {
  readonly def: CaseDefinition;
  readonly received: readonly ObservedEvent[];
  readonly expected: Expectation | undefined;
  readonly expectedClose: ExpectedClose | undefined;
  readonly closedByMe: boolean;
  readonly droppedByMe: boolean;
  readonly wasClean: boolean;
  readonly connected: boolean;
  /** Why the opening handshake failed, when the client refused the server's response. */
  readonly handshakeError?: string | undefined;
  /** Why the case could not run: the server does not implement what it tests (Autobahn's UNIMPLEMENTED). */
  readonly unimplemented?: string | undefined;
  readonly remoteCloseCode: number | null;
  readonly remoteCloseReason: string | null;
  readonly duration: number;
  readonly wire: readonly WireEntry[];
  readonly notes: readonly string[];
}

const ORDER = ['OK', 'NON-STRICT', 'INFORMATIONAL'] as const;

/**
 * The verdict, by Autobahn's rules (Case.onConnectionLost):
 * - behavior: the first expectation whose event list equals what was received, else FAILED;
 * - behaviorClose: FAILED if the wrong side started the close; UNCLEAN if a clean close was required
 *   and did not happen; WRONG CODE if the server's close code is not an allowed one; FAILED BY CLIENT
 *   if the client had to drop TCP (the server should close it, RFC 6455 §7.1.1); else OK.
 * The final verdict is `behavior`, but FAILED when the close behaviour is not OK (except for
 * INFORMATIONAL and UNIMPLEMENTED cases, whose close behaviour is reported, not judged).
 * A case the server cannot run (permessage-deflate declined) is UNIMPLEMENTED whatever was received;
 * a handshake the client refused is FAILED.
 */
export function judge(r: CaseRecord): CaseResult {
  let behavior: Verdict = 'FAILED';
  let result = r.connected
    ? 'Actual events differ from any expected.'
    : r.handshakeError !== undefined
      ? `The opening handshake failed: ${r.handshakeError}`
      : 'Could not connect to the server.';
  if (r.unimplemented !== undefined) {
    behavior = 'UNIMPLEMENTED';
    result = r.unimplemented;
  } else if (r.expected !== undefined) {
    for (const key of ORDER) {
      const list = r.expected[key];
      if (list !== undefined && sameEvents(r.received, list)) {
        behavior = key;
        result = `Actual events match the ${key} expectation.`;
        break;
      }
    }
  } else if (r.connected) {
    result = 'The case set no expectation.';
  }
  // Autobahn reports informational cases as INFORMATIONAL whatever happened.
  if (r.def.informational === true) behavior = 'INFORMATIONAL';

  let behaviorClose: CloseVerdict = 'FAILED';
  let resultClose = 'TCP connection was dropped without close handshake';
  const close = r.expectedClose;
  if (!r.connected) {
    resultClose = r.handshakeError !== undefined ? 'The WebSocket opening handshake was never completed.' : 'No connection.';
  } else if (close === undefined) {
    resultClose = 'The case set no close expectation.';
  } else if (close.closedByMe !== r.closedByMe) {
    resultClose = 'The connection was failed by the wrong endpoint.';
  } else if (close.requireClean && !r.wasClean) {
    behaviorClose = 'UNCLEAN';
    resultClose = 'The spec requires the connection to be closed cleanly here.';
  } else if (r.remoteCloseCode !== null && !close.closeCode.includes(r.remoteCloseCode)) {
    behaviorClose = 'WRONG CODE';
    resultClose = `The close code should have been ${close.closeCode.join(',')} or empty.`;
  } else if (r.droppedByMe) {
    behaviorClose = 'FAILED BY CLIENT';
    resultClose = 'The client had to drop the TCP connection; the server should close it.';
  } else {
    behaviorClose = 'OK';
    resultClose = 'Connection was properly closed.';
  }
  const judgedClose = !(['INFORMATIONAL', 'UNIMPLEMENTED'] as Verdict[]).includes(behavior);
  const verdict: Verdict = judgedClose && behaviorClose !== 'OK' ? 'FAILED' : behavior;
  return {
    id: r.def.id,
    description: r.def.description,
    expectation: r.def.expectation,
    verdict,
    behavior,
    behaviorClose,
    result,
    resultClose,
    expected: Object.fromEntries(Object.entries(r.expected ?? {}).map(([k, v]) => [k, (v ?? []).map(describeExpected)])),
    expectedClose: close,
    observed: r.received.map(describeObserved),
    closedByMe: r.closedByMe,
    droppedByMe: r.droppedByMe,
    wasClean: r.wasClean,
    remoteCloseCode: r.remoteCloseCode,
    remoteCloseReason: r.remoteCloseReason,
    duration: Math.round(r.duration * 1000) / 1000,
    reportTime: r.def.reportTime === true,
    wire: r.wire,
    notes: r.notes,
  };
}

/** A payload for a report: text when short printable UTF-8, else length and leading hex. */
function describePayload(data: Buffer): { length: number; text?: string; hex?: string } {
  if (data.length <= 256) {
    const text = data.toString('utf8');
    if (Buffer.from(text).equals(data) && !/[\0-\x08\x0e-\x1f]/.test(text)) return { length: data.length, text };
    return { length: data.length, hex: data.toString('hex') };
  }
  return { length: data.length, hex: `${data.subarray(0, 32).toString('hex')}…` };
}

function describeObserved(e: ObservedEvent): unknown {
  return e.type === 'message' ? { type: 'message', binary: e.binary, ...describePayload(e.data) } : { type: e.type, ...describePayload(e.data) };
}

function describeExpected(e: ExpectedEvent): unknown {
  const data = typeof e[1] === 'string' ? Buffer.from(e[1]) : e[1];
  return e[0] === 'message' ? { type: 'message', binary: e[2], ...describePayload(data) } : { type: e[0], ...describePayload(data) };
}

/** Exact comparison of observed events with an expected list (Autobahn compares pickled lists). */
export function sameEvents(observed: readonly ObservedEvent[], expected: readonly ExpectedEvent[]): boolean {
  if (observed.length !== expected.length) return false;
  for (let i = 0; i < observed.length; i++) {
    const o = observed[i]!;
    const e = expected[i]!;
    if (o.type !== e[0]) return false;
    const payload = typeof e[1] === 'string' ? Buffer.from(e[1]) : e[1];
    if (!o.data.equals(payload)) return false;
    if (o.type === 'message' && e[0] === 'message' && o.binary !== e[2]) return false;
  }
  return true;
}
