/**
 * Sec-WebSocket-Extensions (RFC 6455 §9.1): a comma-separated list of extensions, each a token with
 * `;`-separated parameters, each parameter a token with an optional value (a token or a quoted
 * string). Parsed strictly: anything else makes the whole header malformed.
 */

/** One extension of a list: its name and parameters in order (a parameter without value is `true`). */
export interface ExtensionOffer {
  readonly name: string;
  readonly params: ReadonlyArray<readonly [string, string | true]>;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Parses a header's values (joined with commas when repeated). Returns null when malformed. An empty
 * or absent header gives an empty list.
 */
export function parseExtensions(value: string | readonly string[] | undefined): ExtensionOffer[] | null {
  if (value === undefined) return [];
  const text = typeof value === 'string' ? value : value.join(',');
  const out: ExtensionOffer[] = [];
  let i = 0;
  const n = text.length;
  const skipSpace = (): void => {
    while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
  };
  const readToken = (): string | null => {
    const start = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(text[i]!)) i++;
    return i > start ? text.slice(start, i) : null;
  };
  // Empty list elements are allowed anywhere (RFC 7230 §7), also before the first.
  skipSpace();
  if (i === n) return [];
  while (text[i] === ',') {
    i++;
    skipSpace();
  }
  // 1#extension: commas alone hold no element.
  if (i === n) return null;
  for (;;) {
    skipSpace();
    const name = readToken();
    if (name === null) return null;
    const params: Array<readonly [string, string | true]> = [];
    skipSpace();
    while (text[i] === ';') {
      i++;
      skipSpace();
      const key = readToken();
      if (key === null) return null;
      skipSpace();
      let val: string | true = true;
      if (text[i] === '=') {
        i++;
        skipSpace();
        if (text[i] === '"') {
          // quoted-string (RFC 7230 §3.2.6); RFC 6455 §9.1 requires its content to be a token.
          i++;
          let s = '';
          while (i < n && text[i] !== '"') {
            if (text[i] === '\\') i++;
            if (i < n) s += text[i++];
          }
          if (text[i] !== '"') return null;
          i++;
          if (!TOKEN.test(s)) return null;
          val = s;
        } else {
          const t = readToken();
          if (t === null) return null;
          val = t;
        }
        skipSpace();
      }
      params.push([key.toLowerCase(), val]);
    }
    out.push({ name: name.toLowerCase(), params });
    skipSpace();
    if (i === n) return out;
    if (text[i] !== ',') return null;
    i++;
    // Empty list elements are allowed by RFC 7230 §7 (`a, , b`).
    skipSpace();
    while (text[i] === ',') {
      i++;
      skipSpace();
    }
    if (i === n) return out;
  }
}

/** Formats one extension for a header. */
export function formatExtension(name: string, params: ReadonlyArray<readonly [string, string | true]>): string {
  return [name, ...params.map(([k, v]) => (v === true ? k : `${k}=${v}`))].join('; ');
}
