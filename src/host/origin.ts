/** A route's origin policy: the request's own origin, any origin, or a list of trusted origins. */
export type OriginPolicy = 'same' | 'any' | readonly string[];

/** Normalizes an origin (scheme://host[:port], default ports dropped, lower case); undefined when malformed. */
export function normalizeOrigin(origin: string): string | undefined {
  if (origin === 'null') return 'null'; // RFC 6454 §7.3: opaque origins serialize as "null"
  try {
    const url = new URL(origin);
    if (url.origin === 'null') return undefined;
    return url.origin;
  } catch {
    return undefined;
  }
}

/**
 * Decides whether a request's Origin passes the policy. `same`: the Origin must equal the request's
 * own origin, built from the scheme of the connection and the Host header (RFC 6455 §10.2: the
 * server uses Origin to refuse cross-origin browser connections). A missing Origin (non-browser
 * client) passes unless `requireOrigin` is set.
 */
export function checkOrigin(
  policy: OriginPolicy,
  requireOrigin: boolean,
  origin: string | undefined,
  scheme: 'http' | 'https',
  host: string,
): 'WSMOD_ERR_ORIGIN' | 'WSMOD_ERR_ORIGIN_REQUIRED' | undefined {
  if (origin === undefined) return requireOrigin ? 'WSMOD_ERR_ORIGIN_REQUIRED' : undefined;
  if (policy === 'any') return undefined;
  const given = normalizeOrigin(origin.trim());
  if (given === undefined) return 'WSMOD_ERR_ORIGIN';
  if (policy === 'same') return given === normalizeOrigin(`${scheme}://${host.trim()}`) ? undefined : 'WSMOD_ERR_ORIGIN';
  return policy.includes(given) ? undefined : 'WSMOD_ERR_ORIGIN';
}
