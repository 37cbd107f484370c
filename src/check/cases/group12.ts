/**
 * Autobahn group 12 — WebSocket compression (permessage-deflate, RFC 7692) with the default offer
 * ("permessage-deflate; client_no_context_takeover; client_max_window_bits"): for each of five data
 * sets (12.1 JSON, 12.2 bitmap, 12.3 German text, 12.4 HTML, 12.5 PDF-like), 18 runs of 1000 echoed
 * messages of 16 to 131072 octets, unfragmented or fragmented after compression (see deflate-echo.ts).
 * 90 cases, 12.1.1 to 12.5.18.
 */
import type { CaseDefinition } from '../types.ts';
import { GROUP12_DATA } from './deflate-data.ts';
import { DEFLATE_RUNS, autobahnOffer, deflateEchoCase } from './deflate-echo.ts';

/** Autobahn's default PerMessageDeflateOffer(). */
export const DEFAULT_OFFER = autobahnOffer();

/**
 * Group 12; `messages` replaces Autobahn's 1000 messages per case (same ids, sizes, fragmentation and
 * offers: a quicker variant for a test gate).
 */
export function group12Cases(options: { readonly messages?: number } = {}): CaseDefinition[] {
  return GROUP12_DATA.flatMap((data, j) =>
    DEFLATE_RUNS.map((run, i) =>
      deflateEchoCase({
        id: `12.${j + 1}.${i + 1}`,
        data,
        run,
        offers: [DEFAULT_OFFER],
        offerText: `the default offer "${DEFAULT_OFFER}"`,
        ...(options.messages === undefined ? {} : { messages: options.messages }),
      }),
    ),
  );
}

/** Group 12 as Autobahn runs it. */
export const group12: readonly CaseDefinition[] = group12Cases();
