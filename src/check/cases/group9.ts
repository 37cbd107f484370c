/**
 * Group 9: limits and performance (after Autobahn's cases 9.1.x to 9.8.x). Large messages, messages
 * in many fragments, messages written to the socket in small chops, and runs of 1000 round trips.
 * Every case reports its duration. The server under test must accept messages of at least 16 MiB.
 *
 * Autobahn gives each case a wait (closeAfter / WAITSECS) after which it gives up; here that wait is
 * the case's `timeout`, never shorter than MIN_TIMEOUT. Autobahn only checks the type and the length
 * of an echo; these cases compare the whole payload, which a correct echo server passes just the same.
 */
import type { CaseContext, CaseDefinition, ExpectedClose, ObservedEvent } from '../types.ts';
import { CLOSE } from '../types.ts';

const KiB = 1024;
const MiB = 1024 * 1024;

/** Lower bound for every case's timeout, ms. */
const MIN_TIMEOUT = 60_000;

/** The client closes (1000) once the echo is in, and the closing handshake must complete. */
const NORMAL_CLOSE: ExpectedClose = { closedByMe: true, closeCode: [CLOSE.NORMAL], requireClean: true };

/** `length` octets of `seed` repeated (Autobahn's way of filling a frame of a given payload length). */
export function filled(seed: Buffer | string, length: number): Buffer {
  const unit = typeof seed === 'string' ? Buffer.from(seed) : seed;
  const out = Buffer.alloc(length);
  for (let at = 0; at < length; at += unit.length) unit.copy(out, at, 0, Math.min(unit.length, length - at));
  return out;
}

/** "64 KiB", "4 MiB", "256 octets". */
function size(n: number): string {
  if (n >= MiB && n % MiB === 0) return `${n / MiB} MiB`;
  if (n >= KiB && n % KiB === 0) return `${n / KiB} KiB`;
  return `${n} octets`;
}

function kind(binary: boolean): string {
  return binary ? 'binary' : 'text';
}

function timeoutMs(waitSeconds: number): number {
  return Math.max(waitSeconds * 1000, MIN_TIMEOUT);
}

const TEXT_SEED = 'BAsd7&jh23';
const BINARY_SEED = Buffer.from([0x00, 0xfe, 0x23, 0xfa, 0xf0]);

/** Closes the connection normally on the first message, whatever it is (Autobahn's onMessage in 9.1 to 9.6). */
function closeOnFirstMessage(ctx: CaseContext, event: ObservedEvent): void {
  if (event.type === 'message') void ctx.sendClose(CLOSE.NORMAL);
}

// ---- 9.1 / 9.2: one message of increasing size, in one frame ----

/** [payload length, Autobahn's wait in seconds] */
const SINGLE_FRAME_TEXT: ReadonlyArray<readonly [number, number]> = [
  [64 * KiB, 10],
  [256 * KiB, 10],
  [1 * MiB, 100],
  [4 * MiB, 100],
  [8 * MiB, 100],
  [16 * MiB, 100],
];
const SINGLE_FRAME_BINARY: ReadonlyArray<readonly [number, number]> = [
  [64 * KiB, 10],
  [256 * KiB, 10],
  [1 * MiB, 10],
  [4 * MiB, 10],
  [8 * MiB, 100],
  [16 * MiB, 100],
];

function singleFrame(id: string, binary: boolean, length: number, waitSeconds: number, chopsize?: number): CaseDefinition {
  const seed = binary ? 'the 5 octets 00 FE 23 FA F0' : `the octets "${TEXT_SEED}"`;
  const chopped = chopsize === undefined ? '' : ` The frame's bytes go to the socket in chops of ${chopsize} octets.`;
  return {
    id,
    description: `Send one ${kind(binary)} message of ${size(length)} (${seed} repeated) in a single frame.${chopped}`,
    expectation: `The ${kind(binary)} message is echoed with the payload as sent, then the closing handshake completes cleanly with code 1000.`,
    timeout: timeoutMs(waitSeconds),
    reportTime: true,
    run: async (ctx) => {
      const payload = filled(binary ? BINARY_SEED : TEXT_SEED, length);
      ctx.expect({ OK: [['message', payload, binary]] }, NORMAL_CLOSE);
      await ctx.sendFrame(
        chopsize === undefined ? { opcode: binary ? 0x2 : 0x1, payload } : { opcode: binary ? 0x2 : 0x1, payload, chopsize },
      );
    },
    onEvent: closeOnFirstMessage,
  };
}

// ---- 9.3 / 9.4: a 4 MiB message in fragments of increasing size ----

const FRAGMENTED_LENGTH = 4 * MiB;
const FRAGMENT_SIZES: readonly number[] = [64, 256, 1 * KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB];
const FRAGMENTED_WAIT_SECONDS = 100;

function fragmented(id: string, binary: boolean, fragmentSize: number, fill: number): CaseDefinition {
  const octet = fill === STAR ? '"*"' : `octet ${fill.toString(16).toUpperCase().padStart(2, '0')}`;
  const one = fragmentSize >= FRAGMENTED_LENGTH ? ' (so a single frame)' : '';
  return {
    id,
    description: `Send one ${kind(binary)} message of ${size(FRAGMENTED_LENGTH)} (${octet} repeated) in fragments of ${size(fragmentSize)}${one}.`,
    expectation: `The ${kind(binary)} message is echoed with the payload as sent, then the closing handshake completes cleanly with code 1000.`,
    timeout: timeoutMs(FRAGMENTED_WAIT_SECONDS),
    reportTime: true,
    run: async (ctx) => {
      const payload = Buffer.alloc(FRAGMENTED_LENGTH, fill);
      ctx.expect({ OK: [['message', payload, binary]] }, NORMAL_CLOSE);
      await ctx.sendMessage(payload, binary, { fragmentSize });
    },
    onEvent: closeOnFirstMessage,
  };
}

const STAR = 0x2a; // "*"
// Autobahn fills 9.4.1 with 0xFE and the rest of 9.3 / 9.4 with "*".
const fragmentFill = (binary: boolean, index: number): number => (binary && index === 0 ? 0xfe : STAR);

// ---- 9.5 / 9.6: a 1 MiB message in one frame, written in chops of increasing size ----

const CHOPPED_LENGTH = 1 * MiB;
const CHOP_SIZES: readonly number[] = [64, 128, 256, 512, 1024, 2048];
const CHOPPED_WAIT_SECONDS = 1000;

// ---- 9.7 / 9.8: 1000 round trips of messages of increasing size ----

/** [payload length, Autobahn's wait for the whole run in seconds] */
const ROUND_TRIPS: ReadonlyArray<readonly [number, number]> = [
  [0, 60],
  [16, 60],
  [64, 60],
  [256, 120],
  [1024, 240],
  [4096, 480],
];
const ROUND_TRIP_COUNT = 1000;

interface RoundTripState {
  sent: number;
}

function roundTrips(id: string, binary: boolean, length: number, waitSeconds: number): CaseDefinition {
  const fill = binary ? 0xfe : STAR;
  const payload = Buffer.alloc(length, fill);
  const opcode = binary ? 0x2 : 0x1;
  const states = new WeakMap<CaseContext, RoundTripState>();
  const sendOne = (ctx: CaseContext, state: RoundTripState): void => {
    state.sent++;
    void ctx.sendFrame({ opcode, payload });
  };
  return {
    id,
    description: `Send ${ROUND_TRIP_COUNT} ${kind(binary)} messages of ${length} octets (${binary ? 'octet FE' : '"*"'} repeated), one at a time: each is sent once the previous one has come back. Measures the round-trip time.`,
    expectation: `Every ${kind(binary)} message is echoed with the payload as sent, all within ${waitSeconds} s; then the closing handshake completes cleanly with code 1000.`,
    timeout: timeoutMs(waitSeconds),
    reportTime: true,
    run: (ctx) => {
      const state: RoundTripState = { sent: 0 };
      states.set(ctx, state);
      // Only the last echo is kept in `received`: the case is OK when it arrives and every earlier one matched.
      ctx.expect({ OK: [['message', payload, binary]] }, NORMAL_CLOSE);
      sendOne(ctx, state);
    },
    onEvent: (ctx, event) => {
      const state = states.get(ctx);
      if (state === undefined || event.type !== 'message') return true;
      if (event.binary !== binary || !event.data.equals(payload)) {
        ctx.note(`echo ${state.sent} differs from what was sent (binary: ${event.binary}, ${event.data.length} octets)`);
        void ctx.sendClose(CLOSE.NORMAL);
        return true;
      }
      if (state.sent < ROUND_TRIP_COUNT) {
        sendOne(ctx, state);
        return false;
      }
      ctx.note(`${ROUND_TRIP_COUNT} round trips in ${ctx.elapsed().toFixed(1)} ms`);
      return true;
    },
  };
}

/** Group 9, in Autobahn's order. */
export const group9: readonly CaseDefinition[] = [
  ...SINGLE_FRAME_TEXT.map(([length, wait], i) => singleFrame(`9.1.${i + 1}`, false, length, wait)),
  ...SINGLE_FRAME_BINARY.map(([length, wait], i) => singleFrame(`9.2.${i + 1}`, true, length, wait)),
  ...FRAGMENT_SIZES.map((frag, i) => fragmented(`9.3.${i + 1}`, false, frag, fragmentFill(false, i))),
  ...FRAGMENT_SIZES.map((frag, i) => fragmented(`9.4.${i + 1}`, true, frag, fragmentFill(true, i))),
  ...CHOP_SIZES.map((chop, i) => singleFrame(`9.5.${i + 1}`, false, CHOPPED_LENGTH, CHOPPED_WAIT_SECONDS, chop)),
  ...CHOP_SIZES.map((chop, i) => singleFrame(`9.6.${i + 1}`, true, CHOPPED_LENGTH, CHOPPED_WAIT_SECONDS, chop)),
  ...ROUND_TRIPS.map(([length, wait], i) => roundTrips(`9.7.${i + 1}`, false, length, wait)),
  ...ROUND_TRIPS.map(([length, wait], i) => roundTrips(`9.8.${i + 1}`, true, length, wait)),
];
