/**
 * The echo runs of groups 12 and 13 (after Autobahn's case12_x_x.py): with permessage-deflate in use,
 * send 1000 compressed messages one at a time (each once the previous echo is back), slices of a data
 * set read cyclically, optionally fragmented after compression; every echo must carry the payload as
 * sent. A server that does not accept the offer makes the case UNIMPLEMENTED (the session closes at
 * once); a response the client must refuse makes it FAILED.
 */
import { deflateOffer } from '../../protocol/permessage-deflate.ts';
import type { CaseContext, CaseDefinition, ExpectedClose } from '../types.ts';
import { CLOSE } from '../types.ts';
import { type DeflateTestData, messageAt } from './deflate-data.ts';

/** One run: message length, message count, Autobahn's wait for the whole run (s), fragment size (0: none). */
export interface DeflateRun {
  readonly length: number;
  readonly count: number;
  readonly waitSeconds: number;
  readonly fragmentSize: number;
}

const run = (length: number, count: number, waitSeconds: number, fragmentSize: number): DeflateRun => ({ length, count, waitSeconds, fragmentSize });

/** Autobahn's MSG_SIZES: the 18 runs of every data set / offer, in order (x.y.1 to x.y.18). */
export const DEFLATE_RUNS: readonly DeflateRun[] = [
  run(16, 1000, 60, 0),
  run(64, 1000, 60, 0),
  run(256, 1000, 120, 0),
  run(1024, 1000, 240, 0),
  run(4096, 1000, 480, 0),
  run(8192, 1000, 480, 0),
  run(16384, 1000, 480, 0),
  run(32768, 1000, 480, 0),
  run(65536, 1000, 480, 0),
  run(131072, 1000, 480, 0),
  run(8192, 1000, 480, 256),
  run(16384, 1000, 480, 256),
  run(32768, 1000, 480, 256),
  run(65536, 1000, 480, 256),
  run(131072, 1000, 480, 256),
  run(131072, 1000, 480, 1024),
  run(131072, 1000, 480, 4096),
  run(131072, 1000, 480, 32768),
];

/**
 * Autobahn's PerMessageDeflateOffer(requestNoContextTakeover, requestMaxWindowBits) as a header value:
 * the client always accepts no-context-takeover and a window limit from the server
 * (client_no_context_takeover; client_max_window_bits), and may request server_no_context_takeover
 * and server_max_window_bits (0: not requested).
 */
export function autobahnOffer(requestNoContextTakeover = false, requestMaxWindowBits = 0): string {
  return deflateOffer({
    clientNoContextTakeover: true,
    clientMaxWindowBits: true,
    ...(requestNoContextTakeover ? { serverNoContextTakeover: true } : {}),
    ...(requestMaxWindowBits !== 0 ? { serverMaxWindowBits: requestMaxWindowBits } : {}),
  });
}

const NORMAL_CLOSE: ExpectedClose = { closedByMe: true, closeCode: [CLOSE.NORMAL], requireClean: true };

interface EchoState {
  readonly data: Buffer;
  sent: number;
  current: Buffer;
}

/** What one echo case needs. */
export interface DeflateEchoSpec {
  readonly id: string;
  readonly data: DeflateTestData;
  readonly run: DeflateRun;
  /** Extension offers, in order. */
  readonly offers: readonly string[];
  /** How the offers read in the description. */
  readonly offerText: string;
  /** Messages in the run instead of Autobahn's count (a quicker variant, e.g. for a test gate). */
  readonly messages?: number;
}

function kind(binary: boolean): string {
  return binary ? 'binary' : 'text';
}

/** One case of group 12 or 13. */
export function deflateEchoCase(spec: DeflateEchoSpec): CaseDefinition {
  const { id, data, offers } = spec;
  const { length, waitSeconds, fragmentSize } = spec.run;
  const count = spec.messages ?? spec.run.count;
  const binary = data.binary;
  const states = new WeakMap<CaseContext, EchoState>();
  const fragments = fragmentSize > 0 ? `, the compressed payload fragmented into frames of ${fragmentSize} octets` : ', each in a single frame';
  const sendOne = (ctx: CaseContext, state: EchoState): void => {
    state.current = messageAt(state.data, state.sent, length);
    state.sent++;
    ctx.sendMessage(state.current, binary, fragmentSize > 0 ? { fragmentSize } : {}).catch((err: unknown) => {
      ctx.note(`could not send message ${state.sent}: ${(err as Error).message}`);
      void ctx.sendClose(CLOSE.NORMAL);
    });
  };
  return {
    id,
    description:
      `Send ${count} compressed ${kind(binary)} messages of ${length} octets${fragments}, one at a time (each once the previous one is echoed), ` +
      `consecutive slices of: ${data.description}. Use permessage-deflate, ${spec.offerText}.`,
    expectation:
      `The server accepts permessage-deflate and echoes every message with the payload as sent (compressed or not), all within ${waitSeconds} s; ` +
      `then the closing handshake completes cleanly with code 1000. Without the extension the case is UNIMPLEMENTED.`,
    timeout: waitSeconds * 1000,
    reportTime: true,
    deflate: { offers },
    run: (ctx) => {
      const state: EchoState = { data: data.bytes(), sent: 0, current: Buffer.alloc(0) };
      states.set(ctx, state);
      // Only the last echo is kept in `received`: the case is OK when it arrives and every earlier one matched.
      ctx.expect({ OK: [['message', messageAt(state.data, count - 1, length), binary]] }, NORMAL_CLOSE);
      sendOne(ctx, state);
    },
    onEvent: (ctx, event) => {
      const state = states.get(ctx);
      if (state === undefined || event.type !== 'message') return true;
      if (event.binary !== binary || !event.data.equals(state.current)) {
        const why =
          event.binary !== binary
            ? `type differs (got ${kind(event.binary)}, sent ${kind(binary)})`
            : event.data.length !== length
              ? `length differs (got ${event.data.length}, sent ${length})`
              : 'content differs';
        ctx.note(`echo of message ${state.sent}: ${why}`);
        void ctx.sendClose(CLOSE.NORMAL);
        return true;
      }
      if (state.sent < count) {
        sendOne(ctx, state);
        return false;
      }
      ctx.note(`${count} compressed round trips in ${ctx.elapsed().toFixed(1)} ms`);
      return true;
    },
  };
}
