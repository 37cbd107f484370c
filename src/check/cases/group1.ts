/**
 * Autobahn group 1 — framing: text (1.1.x) and binary (1.2.x) messages of the sizes around the
 * 7-bit / 16-bit / 64-bit payload-length boundaries, each sent as one frame and expected back as an
 * echo. The file also holds the small wire helpers the groups 2–5 share (one-chop batches, Autobahn's
 * `sync` writes, `closeAfter`).
 */
import { randomBytes } from 'node:crypto';
import type { CaseContext, CaseDefinition, FrameSpec } from '../types.ts';
import { CLOSE } from '../types.ts';

// ---------------------------------------------------------------------------------------------
// Shared wire helpers (used by groups 2, 3, 4 and 5)
// ---------------------------------------------------------------------------------------------

/** The bytes of one client frame (masked unless `mask: false`), exactly as `FrameSpec` describes it. */
export function encodeFrame(frame: FrameSpec): Buffer {
  const payload =
    frame.payload === undefined ? Buffer.alloc(0) : typeof frame.payload === 'string' ? Buffer.from(frame.payload, 'utf8') : frame.payload;
  const fin = frame.fin ?? true;
  const rsv = frame.rsv ?? 0;
  const mask = frame.mask ?? true;
  const length = payload.length;
  const extended = length < 126 ? 0 : length < 0x10000 ? 2 : 8;
  const header = Buffer.alloc(2 + extended + (mask ? 4 : 0));
  header[0] = (fin ? 0x80 : 0) | ((rsv & 0x07) << 4) | (frame.opcode & 0x0f);
  header[1] = (mask ? 0x80 : 0) | (extended === 0 ? length : extended === 2 ? 126 : 127);
  if (extended === 2) header.writeUInt16BE(length, 2);
  if (extended === 8) header.writeBigUInt64BE(BigInt(length), 2);
  if (!mask) return Buffer.concat([header, payload]);
  const key = frame.maskKey ?? randomBytes(4);
  key.copy(header, 2 + extended, 0, 4);
  const body = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) body[i] = (payload[i] ?? 0) ^ (key[i & 3] ?? 0);
  return Buffer.concat([header, body]);
}

/**
 * Several frames in ONE write, like consecutive non-`sync` `sendFrame` calls in Autobahn (Twisted
 * coalesces them into a single chop on the wire).
 */
export async function sendInOneChop(ctx: CaseContext, frames: readonly FrameSpec[]): Promise<void> {
  await ctx.sendRaw(Buffer.concat(frames.map(encodeFrame)));
}

/** One frame as its own write followed by a reactor turn, like Autobahn's `sendFrame(..., sync=True)`. */
export async function sendSync(ctx: CaseContext, frame: FrameSpec): Promise<void> {
  await ctx.sendFrame(frame);
  await ctx.sleep(0);
}

/**
 * Autobahn's `closeAfter(seconds)`: a timer that, if the connection is still up when it fires, starts
 * the closing handshake with a close frame without a code. Normally the automatic close on a matched
 * expectation ends the case long before. Fire-and-forget (like Twisted's `callLater`), so the case's
 * `run` returns at once and the session ends when TCP closes, not when the timer fires.
 */
export function closeAfter(ctx: CaseContext, seconds: number): void {
  void (async () => {
    await ctx.sleep(seconds * 1000);
    await ctx.sendClose();
  })().catch(() => {
    // The connection is already gone: nothing to do.
  });
}

// ---------------------------------------------------------------------------------------------
// Group 1
// ---------------------------------------------------------------------------------------------

interface EchoSpec {
  readonly id: string;
  readonly binary: boolean;
  readonly size: number;
  readonly chopsize?: number;
}

const echoSpecs: readonly EchoSpec[] = [
  ...[0, 125, 126, 127, 128, 65535, 65536].map((size, i) => ({ id: `1.1.${i + 1}`, binary: false, size })),
  { id: '1.1.8', binary: false, size: 65536, chopsize: 997 },
  ...[0, 125, 126, 127, 128, 65535, 65536].map((size, i) => ({ id: `1.2.${i + 1}`, binary: true, size })),
  { id: '1.2.8', binary: true, size: 65536, chopsize: 997 },
];

function echoCase(spec: EchoSpec): CaseDefinition {
  const kind = spec.binary ? 'binary' : 'text';
  const fill = spec.binary ? 'octet 0xFE' : "'*'";
  // Autobahn gives the two 64 KiB-ish sizes 10 s before dropping the connection, the small ones 1 s.
  const killSeconds = spec.size > 128 ? 10 : 1;
  const payload = Buffer.alloc(spec.size, spec.binary ? 0xfe : 0x2a);
  const chopped = spec.chopsize === undefined ? '' : ` The frame's bytes go out in chops of ${spec.chopsize} octets.`;
  return {
    id: spec.id,
    description:
      spec.size === 0
        ? `Send a ${kind} message with an empty payload, as a single frame (opcode ${spec.binary ? 2 : 1}).`
        : `Send a ${kind} message whose payload is ${spec.size} octets (${fill} repeated), as a single frame (opcode ${spec.binary ? 2 : 1}).${chopped}`,
    expectation:
      spec.size === 0
        ? `The server echoes a ${kind} message with an empty payload. The client then closes with 1000 and the closing handshake completes cleanly.`
        : `The server echoes a ${kind} message carrying the same ${spec.size} octets. The client then closes with 1000 and the closing handshake completes cleanly.`,
    timeout: killSeconds * 1000 + 5000,
    async run(ctx) {
      ctx.expect({ OK: [['message', payload, spec.binary]] }, { closedByMe: true, closeCode: [CLOSE.NORMAL], requireClean: true });
      await ctx.sendFrame(
        spec.chopsize === undefined
          ? { opcode: spec.binary ? 2 : 1, payload }
          : { opcode: spec.binary ? 2 : 1, payload, chopsize: spec.chopsize },
      );
      ctx.killAfter(killSeconds);
    },
  };
}

export const group1: readonly CaseDefinition[] = echoSpecs.map(echoCase);
