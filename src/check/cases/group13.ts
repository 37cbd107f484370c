/**
 * Autobahn group 13 — permessage-deflate parameters (RFC 7692 §7.1): the JSON data set under seven
 * client offers, each 18 runs of 1000 echoed messages (see deflate-echo.ts). Autobahn writes an offer
 * as the tuple (requestNoContextTakeover, requestMaxWindowBits): whether the client requests
 * server_no_context_takeover, and the server_max_window_bits it requests (0: none). Every offer also
 * carries client_no_context_takeover and client_max_window_bits. 13.7 sends three offers in order of
 * preference. 126 cases, 13.1.1 to 13.7.18.
 */
import type { CaseDefinition } from '../types.ts';
import { DEFLATE_DATA } from './deflate-data.ts';
import { DEFLATE_RUNS, autobahnOffer, deflateEchoCase } from './deflate-echo.ts';

/** Autobahn's DEFLATE_PARAMS client offers: per subgroup 13.1 to 13.7, the (requestNoContextTakeover, requestMaxWindowBits) tuples. */
export const GROUP13_OFFERS: ReadonlyArray<ReadonlyArray<readonly [boolean, number]>> = [
  [[false, 0]],
  [[true, 0]],
  [[false, 8]],
  [[false, 15]],
  [[true, 8]],
  [[true, 15]],
  [
    [true, 8],
    [true, 0],
    [false, 0],
  ],
];

/** Python's repr of the tuple list, as Autobahn prints it: "[(True, 8), (True, 0), (False, 0)]". */
export function offerTuples(tuples: ReadonlyArray<readonly [boolean, number]>): string {
  const py = (b: boolean) => (b ? 'True' : 'False');
  return `[${tuples.map(([nct, bits]) => `(${py(nct)}, ${bits})`).join(', ')}]`;
}

/**
 * Group 13; `messages` replaces Autobahn's 1000 messages per case (same ids, sizes, fragmentation and
 * offers: a quicker variant for a test gate).
 */
export function group13Cases(options: { readonly messages?: number } = {}): CaseDefinition[] {
  return GROUP13_OFFERS.flatMap((tuples, j) => {
    const offers = tuples.map(([nct, bits]) => autobahnOffer(nct, bits));
    const offerText = `client offers (requestNoContextTakeover, requestMaxWindowBits): ${offerTuples(tuples)}, i.e. ${offers.map((o) => `"${o}"`).join(', ')}`;
    return DEFLATE_RUNS.map((run, i) =>
      deflateEchoCase({
        id: `13.${j + 1}.${i + 1}`,
        data: DEFLATE_DATA.json_data1,
        run,
        offers,
        offerText,
        ...(options.messages === undefined ? {} : { messages: options.messages }),
      }),
    );
  });
}

/** Group 13 as Autobahn runs it. */
export const group13: readonly CaseDefinition[] = group13Cases();
