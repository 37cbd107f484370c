// Keeps the prose documentation in step with the code: the error registry, the defaults and the close
// code table each have a page that must list every entry, and nothing the code does not have; the
// configuration page names every key of the configuration schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { configSchema } from '../src/config/schema.ts';
import { ERRORS, type ErrorDefinition } from '../src/errors.ts';
import { DEFAULTS } from '../src/host/options.ts';
import { CLOSE_CODES } from '../src/protocol/close-codes.ts';

function readDoc(name: string): string {
  return readFileSync(new URL(`../docs/${name}`, import.meta.url), 'utf8');
}

/** The cells of every markdown table row (`| a | b |` → ['a', 'b']), separator rows left out. */
function tableRows(markdown: string): string[][] {
  const rows: string[][] = [];
  for (const line of markdown.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('|') || !t.endsWith('|') || /^\|[\s|:-]+\|$/.test(t)) continue;
    rows.push(t.slice(1, -1).split('|').map((cell) => cell.trim()));
  }
  return rows;
}

/** The table row whose first cell is exactly `first`, or undefined. */
function rowStartingWith(rows: readonly string[][], first: string): string[] | undefined {
  return rows.find((cells) => cells[0] === first);
}

test('docs/errors.md lists every code of ERRORS, with its status or close code, and no other code', () => {
  const doc = readDoc('errors.md');
  const rows = tableRows(doc);
  const registry = ERRORS as Readonly<Record<string, ErrorDefinition>>;
  for (const [code, def] of Object.entries(registry)) {
    assert.ok(doc.includes(code), `${code} is missing from docs/errors.md`);
    const row = rowStartingWith(rows, `\`${code}\``);
    assert.ok(row !== undefined, `docs/errors.md has no table row for ${code}`);
    const wire = def.status ?? def.closeCode;
    const second = row[1] ?? '';
    if (wire === undefined) {
      assert.equal(second, '—', `${code} maps to no status or close code, but its row says "${second}"`);
    } else {
      assert.ok(second.includes(String(wire)), `${code} maps to ${wire}, but its row says "${second}"`);
    }
  }
  const mentioned = new Set(doc.match(/\bWSMOD_ERR_[A-Z0-9_]*[A-Z0-9]/g) ?? []);
  assert.ok(mentioned.size > 0);
  for (const code of mentioned) {
    assert.ok(Object.hasOwn(ERRORS, code), `docs/errors.md mentions ${code}, which is not in ERRORS`);
  }
});

test('docs/protocol.md names every default of DEFAULTS, with its value', () => {
  const doc = readDoc('protocol.md');
  const rows = tableRows(doc);
  for (const [name, value] of Object.entries(DEFAULTS)) {
    assert.ok(doc.includes(`\`${name}\``), `DEFAULTS.${name} is not named in docs/protocol.md`);
    const row = rowStartingWith(rows, `\`${name}\``);
    assert.ok(row !== undefined, `docs/protocol.md has no table row for ${name}`);
    assert.ok(
      row.slice(1).some((cell) => cell.includes(`\`${String(value)}\``)),
      `the row for ${name} does not give its default \`${String(value)}\`: ${row.join(' | ')}`,
    );
  }
});

test('docs/close-codes.md lists every code of CLOSE_CODES, and says rightly whether it is valid on the wire', () => {
  const doc = readDoc('close-codes.md');
  const rows = tableRows(doc);
  assert.ok(CLOSE_CODES.size > 0);
  for (const [code, info] of CLOSE_CODES) {
    assert.ok(doc.includes(String(code)), `close code ${code} is missing from docs/close-codes.md`);
    const row = rowStartingWith(rows, String(code));
    assert.ok(row !== undefined, `docs/close-codes.md has no table row for ${code}`);
    assert.ok(row.includes(`\`${info.name}\``), `the row for ${code} does not name it ${info.name}`);
    const wire = row[3] ?? '';
    assert.ok(wire === (info.onWire ? 'yes' : 'no'), `the row for ${code} says "${wire}" for valid on the wire`);
  }
});

/** The zod definition behind a schema (zod 4 keeps it at `_zod.def`). */
interface SchemaDef {
  readonly type: string;
  readonly shape?: Readonly<Record<string, unknown>>;
  readonly innerType?: unknown;
  readonly options?: readonly unknown[];
  readonly element?: unknown;
  readonly in?: unknown;
  readonly out?: unknown;
  readonly valueType?: unknown;
}

/**
 * Every object in a schema, by where it sits (`routes[]`, `limits`, `listen[].tls`...), with its keys.
 * Walks through optional/default wrappers, unions, arrays, pipes (transforms) and records, so a key is
 * found wherever the schema nests it.
 */
function schemaObjects(schema: unknown, at = '', out = new Map<string, string[]>()): Map<string, string[]> {
  const def = (schema as { _zod?: { def?: SchemaDef } })._zod?.def;
  if (def === undefined) return out;
  switch (def.type) {
    case 'object': {
      const shape = def.shape ?? {};
      out.set(at || '(top level)', [...(out.get(at || '(top level)') ?? []), ...Object.keys(shape)]);
      for (const [key, value] of Object.entries(shape)) schemaObjects(value, at === '' ? key : `${at}.${key}`, out);
      break;
    }
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'catch':
    case 'nonoptional':
      schemaObjects(def.innerType, at, out);
      break;
    case 'union':
      for (const option of def.options ?? []) schemaObjects(option, at, out);
      break;
    case 'array':
      schemaObjects(def.element, `${at}[]`, out);
      break;
    case 'pipe':
      schemaObjects(def.in, at, out);
      schemaObjects(def.out, at, out);
      break;
    case 'record':
      schemaObjects(def.valueType, `${at}.*`, out);
      break;
  }
  return out;
}

test('docs/configuration.md names every key of the configuration schema (top level, listen, limits, logging, routes)', () => {
  const doc = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
  const objects = schemaObjects(configSchema);
  // The walk must reach the objects this page documents; if zod's internals change, fail loudly here.
  const top = objects.get('(top level)') ?? [];
  const route = objects.get('routes[]') ?? [];
  for (const key of ['listen', 'limits', 'logging', 'routes']) assert.ok(top.includes(key), `the schema walk found no top-level "${key}"`);
  for (const key of ['path', 'plugin', 'command', 'isolation', 'options', 'maxMessageSize', 'killGrace']) {
    assert.ok(route.includes(key), `the schema walk found no route key "${key}"`);
  }
  for (const where of ['limits', 'logging', 'listen[]', 'listen[].tls']) {
    assert.ok((objects.get(where) ?? objects.get(where.replace('[]', '')) ?? []).length > 0, `the schema walk found no object at ${where}`);
  }
  for (const [where, keys] of objects) {
    for (const key of new Set(keys)) {
      assert.ok(doc.includes(`\`${key}\``), `docs/configuration.md does not name the key \`${key}\` (of ${where} in src/config/schema.ts)`);
    }
  }
});
