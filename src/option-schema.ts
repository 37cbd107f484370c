/**
 * The kit every options schema of wsmod is built from: the host's routes and limits
 * (`host/options-schema.ts`), the process plugin's options (`plugin/isolation/process-options.ts`)
 * and the configuration file (`config/schema.ts`, which adds units and file-only keys to the same
 * rules). One wording per kind of value, and one way to render a problem:
 * `key.path: expected <what>, found <value>; <what to write>`, so the programmatic API and the
 * configuration file say the same thing about the same value.
 */
import { createRequire } from 'node:module';
import type { z as zt } from 'zod';

type Zod = typeof zt;

let loadedZod: Zod | undefined;

/**
 * zod, loaded on first use. zod costs ~90 ms to import (it evaluates all of its locales), and
 * `import 'wsmod'` in a plugin or a worker must not pay that before options are checked; createHost
 * is synchronous, so the load is a synchronous require. Every schema in wsmod goes through here, so
 * there is one zod instance (never the ESM and the CommonJS copy side by side).
 */
export function zod(): Zod {
  loadedZod ??= (createRequire(import.meta.url)('zod') as { z: Zod }).z;
  return loadedZod;
}

/** A value built on first call and kept: schemas are made when first needed, not at import. */
export function once<T>(build: () => T): () => T {
  let built: { value: T } | undefined;
  return () => (built ??= { value: build() }).value;
}

/** A schema of wsmod's options (any zod schema). */
export type Schema<Out = unknown> = zt.ZodType<Out, unknown>;

/**
 * Separates what was expected from what to write in an issue message: `a size ≥ 1 byte; write …`
 * renders as `expected a size ≥ 1 byte, found -5; write …`.
 */
const HINT = '; ';

/** An issue message: what was expected, and optionally what to write instead. */
export function expecting(expected: string, hint?: string): string {
  return hint === undefined ? expected : `${expected}${HINT}${hint}`;
}

/** How numbers with units are written: plain numbers in code; a configuration file adds `1MiB`, `30s`. */
export interface Units {
  /** Bytes, a whole number from `min` (to `max` when given). */
  size(min: number, max?: number): Schema<number>;
  /** Milliseconds, a whole number from `min`. */
  duration(min: number): Schema<number>;
}

const GiB = 1024 ** 3;

function bytes(n: number): string {
  if (n >= GiB && n % GiB === 0) return `${n / GiB} GiB`;
  return `${n} byte${n === 1 ? '' : 's'}`;
}

const SIZE_HINT = 'write a whole number of bytes (a configuration file also takes units: 64KiB, 1MiB)';
const DURATION_HINT = 'write a whole number of milliseconds (a configuration file also takes units: 250ms, 30s, 2m)';

/** A whole number in [min, max] with one message for every way it can be wrong. */
export function wholeNumber(min: number, max: number | undefined, message: string): Schema<number> {
  const z = zod();
  const n = z.number({ error: message }).int({ error: message }).min(min, { error: message });
  return max === undefined ? n : n.max(max, { error: message });
}

/** The units of the programmatic API: plain numbers of bytes and milliseconds. */
export const plainUnits: Units = {
  size: (min, max) => wholeNumber(min, max, expecting(`a size ≥ ${bytes(min)}${max === undefined ? '' : ` and ≤ ${bytes(max)}`}`, SIZE_HINT)),
  duration: (min) => wholeNumber(min, undefined, expecting(`a duration ≥ ${min} ms`, DURATION_HINT)),
};

/** A whole number ≥ min (a count of things), with a hint for the common mistake when given. */
export function count(min: number, hint?: string): Schema<number> {
  return wholeNumber(min, undefined, expecting(`a whole number ≥ ${min}`, hint));
}

/** A whole number from min to max (zlib levels, window bits). */
export function integerRange(min: number, max: number): Schema<number> {
  return wholeNumber(min, max, `a whole number from ${min} to ${max}`);
}

/** true or false. */
export function flag(): Schema<boolean> {
  return zod().boolean({ error: expecting('true or false', 'write true or false without quotes') });
}

/** One of a few words. */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T): Schema<T[number]> {
  const words = values.map((v) => JSON.stringify(v));
  const list = words.length === 1 ? words[0]! : `${words.slice(0, -1).join(', ')} or ${words.at(-1)!}`;
  return zod().enum(values, { error: list }) as unknown as Schema<T[number]>;
}

/** A non-empty string described as `what`. */
export function text(what: string): Schema<string> {
  const z = zod();
  return z.string({ error: what }).min(1, { error: what });
}

/**
 * An object that refuses unknown keys (a typo must not silently leave a default in place) and
 * suggests the key that was probably meant.
 */
export function strictObject<S extends zt.core.$ZodLooseShape>(shape: S, what = 'an object'): zt.ZodObject<S, zt.core.$strict> {
  const known = Object.keys(shape);
  return zod().strictObject(shape, {
    error: (issue) => {
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((key) => unknownKey(key, known)).join(HINT);
      }
      if (issue.code === 'invalid_type') return what;
      return undefined;
    },
  });
}

function unknownKey(key: string, known: readonly string[]): string {
  const near = known.filter((k) => distance(k.toLowerCase(), key.toLowerCase()) <= Math.max(1, Math.floor(k.length / 4)));
  return near.length > 0 ? `unknown key "${key}" (did you mean "${near[0]}"?)` : `unknown key "${key}" (known keys: ${known.join(', ')})`;
}

/** Edit distance with swaps (optimal string alignment): `listne` is one edit from `listen`. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i]!;
      row[j] = Math.min(d[i - 1]![j]! + 1, row[j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The wording of issues that no schema words itself (zod's defaults say `Invalid input`): used as
 * the parse-level error map, so schema-level messages win.
 */
function fallbackMessage(issue: zt.core.$ZodRawIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return TYPE_NAMES[issue.expected] ?? `a value of type ${issue.expected}`;
    case 'invalid_value':
      return issue.values.map((v) => JSON.stringify(v)).join(' or ');
    case 'too_small':
      return issue.origin === 'array' ? `a list of at least ${String(issue.minimum)}` : issue.origin === 'string' ? 'a non-empty string' : `a value ≥ ${String(issue.minimum)}`;
    case 'too_big':
      return `a value ≤ ${String(issue.maximum)}`;
    case 'invalid_union':
      return 'one of the forms this key takes (see docs/configuration.md)';
    default:
      return issue.message ?? 'a valid value';
  }
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
  record: 'an object',
  function: 'a function',
};

/** A key path as people write it: `routes[0].compression.level`. */
export function keyPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
}

/**
 * A value matching none of a union's forms is best explained by the form it came closest to: the
 * alternative whose problems lie deepest in the value (`listen[0].tls.key`), else the only form whose
 * type the value has (99999 is a number, so: the port's range). When no form fits better than
 * another, the union's own message lists the forms.
 */
function explainUnion(issue: zt.core.$ZodIssue): zt.core.$ZodIssue[] {
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return [issue];
  const options = issue.errors.map((list) => list.flatMap(explainUnion));
  const depth = (list: readonly zt.core.$ZodIssue[]) => Math.max(0, ...list.map((i) => i.path.length));
  const deepest = [...options].sort((a, b) => depth(b) - depth(a))[0]!;
  const typeFits = options.filter((list) => list.some((i) => i.code !== 'invalid_type' && i.code !== 'invalid_union'));
  const chosen = depth(deepest) > 0 ? deepest : typeFits.length === 1 ? typeFits[0]! : undefined;
  if (chosen === undefined) return [issue];
  return chosen.map((inner) => ({ ...inner, path: [...issue.path, ...inner.path] }) as zt.core.$ZodIssue);
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const key of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/** A value as it is shown after `found`: JSON, cut at 60 characters; `nothing` when absent. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'bigint') return `${v}n`;
  let json: string | undefined;
  try {
    json = JSON.stringify(v);
  } catch {
    return Array.isArray(v) ? 'a list that JSON cannot hold' : 'an object that JSON cannot hold';
  }
  if (json === undefined) return String(v);
  return json.length > 60 ? `${json.slice(0, 57)}...` : json;
}

/** One line per problem: `key.path: expected …, found …; what to write`. */
function render(issues: readonly zt.core.$ZodIssue[], root: unknown, prefix: readonly PropertyKey[]): string[] {
  return issues.flatMap(explainUnion).map((issue) => {
    const at = keyPath([...prefix, ...issue.path]);
    if (issue.code === 'unrecognized_keys') return `${at}: ${issue.message}`;
    const cut = issue.message.indexOf(HINT);
    const expected = cut === -1 ? issue.message : issue.message.slice(0, cut);
    const hint = cut === -1 ? '' : issue.message.slice(cut);
    const given = issue.code === 'custom' ? (issue.params as { found?: unknown } | undefined)?.found : undefined;
    const found = typeof given === 'string' ? given : describeValue(valueAt(root, issue.path));
    return `${at}: expected ${expected}, found ${found}${hint}`;
  });
}

/** The outcome of {@link checkOptions}: the parsed value, or one line per problem. */
export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problems: readonly string[] };

/**
 * Parses `value` with `schema`; on failure, renders every problem with its key path (under
 * `prefix`, e.g. `['routes', 0]`), what was expected, what was found and what to write.
 */
export function checkOptions<T>(schema: Schema<T>, value: unknown, prefix: readonly PropertyKey[] = []): Checked<T> {
  const result = schema.safeParse(value, { error: fallbackMessage });
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, problems: render(result.error.issues, value, prefix) };
}

/** Problems as the detail of an error: one on the same line, several one per indented line. */
export function problemText(problems: readonly string[]): string {
  return problems.length === 1 ? problems[0]! : `${problems.length} problems:\n${problems.map((p) => `  ${p}`).join('\n')}`;
}
