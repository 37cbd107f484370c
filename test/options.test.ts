// One options schema: the programmatic API (createHost, createProcessPlugin) and the configuration
// file accept the same values and word the same problem the same way. Each bad value below goes
// through both; the code family differs (WSMOD_ERR_INVALID_OPTION for code, WSMOD_ERR_CONFIG naming
// the file for a file) and the detail, after the key path, must be identical.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../src/config/load.ts';
import { configSchema } from '../src/config/schema.ts';
import { isWsmodError } from '../src/errors.ts';
import { createHost } from '../src/host/host.ts';
import { DEFAULTS } from '../src/host/options.ts';
import { createProcessPlugin } from '../src/plugin/isolation/process.ts';
import { PROCESS_DEFAULTS } from '../src/plugin/isolation/process-options.ts';
import { echoPlugin, memoryLogger } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'wsmod-options-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The problem lines of a WsmodError's message, without the code's text and the file name. */
function problems(message: string, head: RegExp): string[] {
  const body = message.replace(head, '');
  const lines = body.includes('\n') ? body.split('\n').slice(1) : [body];
  return lines.map((l) => l.trim()).filter((l) => l !== '');
}

/** What createHost says about `options`: the problem lines of its WSMOD_ERR_INVALID_OPTION. */
function apiProblems(run: () => unknown): string[] {
  try {
    run();
  } catch (err) {
    assert.ok(isWsmodError(err, 'WSMOD_ERR_INVALID_OPTION'), `expected WSMOD_ERR_INVALID_OPTION, got ${String(err)}`);
    return problems(err.message, /^invalid option: (process plugin \S+: )?(\d+ problems:)?/);
  }
  assert.fail('the API accepted the value');
}

let fileCount = 0;

/** What loading a configuration file (JSON, so values stay exactly as written) says. */
async function fileProblems(config: unknown): Promise<string[]> {
  const file = join(dir, `c${fileCount++}.json`);
  writeFileSync(file, JSON.stringify(config));
  try {
    await loadConfig(file);
  } catch (err) {
    assert.ok(isWsmodError(err, 'WSMOD_ERR_CONFIG'), `expected WSMOD_ERR_CONFIG, got ${String(err)}`);
    assert.ok(err.message.includes(file), 'the file is named');
    return problems(err.message, /^invalid configuration: [^\n]*:/);
  }
  assert.fail('the configuration file accepted the value');
}

/** A problem line without its key path (`routes[0].maxMessageSize: expected …` → `expected …`). */
function detail(line: string, key: string): string {
  const i = line.indexOf(`${key}: `);
  assert.ok(i !== -1, `"${line}" names ${key}`);
  return line.slice(i + key.length + 2);
}

const routeCases: Array<[string, Record<string, unknown>, RegExp]> = [
  ['maxMessageSize -5', { maxMessageSize: -5 }, /^routes\[0\]\.maxMessageSize: expected a size ≥ 1 byte and ≤ 4 GiB, found -5; write a whole number of bytes/],
  ['maxMessageSize 0', { maxMessageSize: 0 }, /maxMessageSize: expected a size ≥ 1 byte .*, found 0/],
  ['maxMessageSize 1.5', { maxMessageSize: 1.5 }, /maxMessageSize: .*found 1\.5/],
  ['maxMessageSize over 4 GiB', { maxMessageSize: 2 ** 32 + 1 }, /maxMessageSize: .*found 4294967297/],
  ['maxMessageSize "big"', { maxMessageSize: 'big' }, /maxMessageSize: .*found "big"/],
  ['idleTimeout -1', { idleTimeout: -1 }, /^routes\[0\]\.idleTimeout: expected a duration ≥ 0 ms, found -1; write a whole number of milliseconds/],
  ['pongTimeout 0 with keepalive', { pongTimeout: 0 }, /^routes\[0\]\.pongTimeout: expected a duration above 0 ms while keepalive is on/],
  ['closeTimeout "soon"', { closeTimeout: 'soon' }, /closeTimeout: .*found "soon"/],
  ['maxBackpressure -1', { maxBackpressure: -1 }, /maxBackpressure: expected a size ≥ 0 bytes, found -1/],
  ['backpressurePolicy "block"', { backpressurePolicy: 'block' }, /^routes\[0\]\.backpressurePolicy: expected "drop" or "close", found "block"$/],
  ['origin "sometimes"', { origin: 'sometimes' }, /origin: expected "same", "any" or a list of origins, found "sometimes"/],
  ['origin list with a non-origin', { origin: ['example.com'] }, /^routes\[0\]\.origin\[0\]: expected an origin: scheme:\/\/host\[:port\], found "example\.com"/],
  ['origin []', { origin: [] }, /origin: .*found \[\]/],
  ['requireOrigin "yes"', { requireOrigin: 'yes' }, /requireOrigin: expected true or false, found "yes"; write true or false without quotes/],
  ['protocols with a space', { protocols: ['chat v1'] }, /^routes\[0\]\.protocols\[0\]: expected a subprotocol token/],
  ['protocols not a list', { protocols: 'chat' }, /protocols: expected a list of subprotocol tokens, found "chat"/],
  ['compression "yes"', { compression: 'yes' }, /compression: expected true, false or an object of compression settings, found "yes"/],
  ['compression level 12', { compression: { level: 12 } }, /^routes\[0\]\.compression\.level: expected a whole number from -1 to 9, found 12$/],
  ['compression window bits 7', { compression: { serverMaxWindowBits: 7 } }, /compression\.serverMaxWindowBits: expected a whole number from 8 to 15, found 7/],
  ['compression threshold -1', { compression: { threshold: -1 } }, /compression\.threshold: expected a size ≥ 0 bytes, found -1/],
  ['compression typo', { compression: { levle: 3 } }, /^routes\[0\]\.compression: unknown key "levle" \(did you mean "level"\?\)$/],
  ['path without "/"', { path: 'echo' }, /^routes\[0\]\.path: expected a path starting with "\/".*found "echo"/],
  ['a typo of a directive', { idleTimout: 1000 }, /^routes\[0\]: unknown key "idleTimout" \(did you mean "idleTimeout"\?\)$/],
];

describe('route directives: createHost and the file say the same', () => {
  for (const [name, bad, expected] of routeCases) {
    test(name, async () => {
      const api = apiProblems(() => createHost({ routes: [{ path: '/e', plugin: echoPlugin, ...bad } as never], logger: memoryLogger() }));
      const file = await fileProblems({ routes: [{ path: '/e', plugin: './echo.ts', ...bad }] });
      assert.equal(api.length, 1, api.join('\n'));
      assert.match(api[0]!, expected);
      assert.deepEqual(file, api);
    });
  }
});

const limitCases: Array<[string, string, unknown, RegExp]> = [
  ['maxConnections 0', 'maxConnections', 0, /^expected a whole number ≥ 1, found 0; 0 would refuse every connection and there is no "unlimited"/],
  ['maxConnections -5', 'maxConnections', -5, /^expected a whole number ≥ 1, found -5/],
  ['maxConnections 1.5', 'maxConnections', 1.5, /found 1\.5/],
  ['maxConnections "10"', 'maxConnections', '10', /found "10"/],
  ['maxConnectionsPerIp 0', 'maxConnectionsPerIp', 0, /^expected a whole number ≥ 1, found 0/],
  ['handshakeTimeout -1', 'handshakeTimeout', -1, /^expected a duration ≥ 0 ms, found -1/],
  ['shutdownDeadline "later"', 'shutdownDeadline', 'later', /^expected a duration ≥ 0 ms, found "later"/],
];

describe('host limits: createHost and the file (under limits) say the same', () => {
  for (const [name, key, value, expected] of limitCases) {
    test(name, async () => {
      const api = apiProblems(() => createHost({ routes: [{ path: '/e', plugin: echoPlugin }], logger: memoryLogger(), [key]: value }));
      const file = await fileProblems({ limits: { [key]: value }, routes: [{ path: '/e', plugin: './echo.ts' }] });
      assert.equal(api.length, 1, api.join('\n'));
      assert.equal(file.length, 1, file.join('\n'));
      assert.match(api[0]!, new RegExp(`^${key}: `));
      assert.match(file[0]!, new RegExp(`^limits\\.${key}: `));
      assert.match(detail(api[0]!, key), expected);
      assert.equal(detail(file[0]!, key), detail(api[0]!, key));
    });
  }

  test('a typo of a host option is refused in code as in a file', async () => {
    const api = apiProblems(() => createHost({ routes: [{ path: '/e', plugin: echoPlugin }], logger: memoryLogger(), maxConnection: 5 } as never));
    const file = await fileProblems({ limits: { maxConnection: 5 }, routes: [{ path: '/e', plugin: './echo.ts' }] });
    assert.deepEqual(api, ['(top level): unknown key "maxConnection" (did you mean "maxConnections"?)']);
    assert.deepEqual(file, ['limits: unknown key "maxConnection" (did you mean "maxConnections"?)']);
  });
});

const processCases: Array<[string, Record<string, unknown>, string, RegExp]> = [
  ['maxProcesses 0', { maxProcesses: 0 }, 'maxProcesses', /^expected a whole number ≥ 1, found 0/],
  ['killGrace -1', { killGrace: -1 }, 'killGrace', /^expected a duration ≥ 0 ms, found -1/],
  ['binary "yes"', { binary: 'yes' }, 'binary', /^expected true or false, found "yes"/],
  ['env value not a string', { env: { PORT: 8080 } }, 'env.PORT', /^expected a string value, found 8080/],
  ['env name with "="', { env: { 'A=B': 'x' } }, 'env.A=B', /^expected an environment variable name without "=", found "A=B"/],
  ['maxLineLength 0', { maxLineLength: 0 }, 'maxLineLength', /^expected a size ≥ 1 byte, found 0/],
  ['maxInputBuffer -1', { maxInputBuffer: -1 }, 'maxInputBuffer', /^expected a size ≥ 0 bytes, found -1/],
  ['command ""', { command: '   ' }, 'command', /^expected a shell command line, or a list \[program, \.\.\.args\] of non-empty strings, found "   "/],
  ['command []', { command: [] }, 'command', /^expected a shell command line, .*found \[\]/],
  ['command [""]', { command: [''] }, 'command[0]', /^expected a shell command line, .*found ""/],
];

describe('process options: createProcessPlugin and a command route say the same', () => {
  for (const [name, bad, key, expected] of processCases) {
    test(name, async () => {
      const api = apiProblems(() => createProcessPlugin({ command: ['cat'], baseDir: dir, path: '/p', log: memoryLogger(), ...bad }));
      const file = await fileProblems({ routes: [{ path: '/p', command: ['cat'], ...bad }] });
      assert.equal(api.length, 1, api.join('\n'));
      assert.equal(file.length, 1, file.join('\n'));
      assert.match(file[0]!, new RegExp(`^routes\\[0\\]\\.${key.replace(/[.[\]]/g, '\\$&')}: `));
      assert.match(detail(api[0]!, key), expected);
      assert.equal(detail(file[0]!, key), detail(api[0]!, key));
    });
  }

  test('options JSON cannot hold are refused by createProcessPlugin', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    const api = apiProblems(() => createProcessPlugin({ command: ['cat'], baseDir: dir, path: '/p', log: memoryLogger(), options: cyclic }));
    assert.match(api[0]!, /^options: expected a value JSON can hold, for WSMOD_OPTIONS/);
  });
});

describe('values both accept, to the same effect', () => {
  test('edge values: keepalive off with pongTimeout 0, 0 timeouts, 1 connection, 4 GiB messages', async () => {
    const edge = { idleTimeout: 0, pongTimeout: 0, closeTimeout: 0, maxBackpressure: 0, maxMessageSize: 2 ** 32, origin: ['HTTPS://Example.com:443'], compression: { threshold: 0, level: 9 } };
    const host = createHost({ routes: [{ path: '/e', plugin: echoPlugin, ...edge }], logger: memoryLogger(), maxConnections: 1, handshakeTimeout: 0 });
    const route = host.routes.get('/e')!;
    assert.equal(route.maxMessageSize, 2 ** 32);
    assert.deepEqual(route.origin, ['https://example.com']);
    assert.equal(route.compression?.level, 9);
    const file = join(dir, 'edge.json');
    writeFileSync(file, JSON.stringify({ limits: { maxConnections: 1, handshakeTimeout: 0 }, routes: [{ path: '/e', plugin: './echo.ts', ...edge, maxMessageSize: '4GiB' }] }));
    const { config } = await loadConfig(file);
    const r = config.routes[0]!;
    assert.equal(r.maxMessageSize, 2 ** 32);
    assert.deepEqual(r.origin, ['https://example.com']);
    assert.deepEqual(config.limits, { maxConnections: 1, handshakeTimeout: 0 });
  });

  test('defaults are what DEFAULTS and PROCESS_DEFAULTS say', () => {
    const route = createHost({ routes: [{ path: '/e', plugin: echoPlugin }], logger: memoryLogger() }).routes.get('/e')!;
    for (const key of ['maxMessageSize', 'idleTimeout', 'pongTimeout', 'closeTimeout', 'maxBackpressure', 'backpressurePolicy', 'origin', 'requireOrigin'] as const) {
      assert.deepEqual(route[key], DEFAULTS[key], key);
    }
    assert.equal(PROCESS_DEFAULTS.maxProcesses, 64);
  });
});

/** The keys of the objects of a zod schema, by where they are (`routes[]`, `limits`, …). */
function schemaKeys(schema: unknown, at = '', out = new Map<string, Set<string>>()): Map<string, Set<string>> {
  const def = (schema as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
  if (def === undefined) return out;
  const walk = (inner: unknown, where: string) => schemaKeys(inner, where, out);
  if (def['type'] === 'object') {
    const shape = def['shape'] as Record<string, unknown>;
    const keys = out.get(at) ?? new Set<string>();
    for (const k of Object.keys(shape)) keys.add(k);
    out.set(at, keys);
    for (const [k, v] of Object.entries(shape)) walk(v, at === '' ? k : `${at}.${k}`);
  } else if (def['type'] === 'union') {
    for (const o of def['options'] as unknown[]) walk(o, at);
  } else if (def['type'] === 'array') {
    walk(def['element'], `${at}[]`);
  } else if (def['type'] === 'pipe') {
    walk(def['in'], at);
    walk(def['out'], at);
  } else if ('innerType' in def) {
    walk(def['innerType'], at);
  }
  return out;
}

test('docs/configuration.md: every key of every table is a key of the schema, and every schema key has a row', () => {
  const doc = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
  const keys = schemaKeys(configSchema);
  const all = new Set([...keys.values()].flatMap((s) => [...s]));
  // The tables that document keys: the rows of `### listen`, `### limits`, `### logging`, `### backplane`, `### routes` and "Top-level keys".
  const sections = doc.split(/\n(?=## |### )/).filter((s) => /^(## Top-level keys|### (listen|limits|logging|backplane|routes))/.test(s));
  assert.ok(sections.length >= 5, 'the key sections of docs/configuration.md are found');
  const documented = new Set<string>();
  for (const section of sections) {
    for (const line of section.split('\n')) {
      const m = /^\| `([A-Za-z]+)` \|/.exec(line);
      if (m !== null) documented.add(m[1]!);
    }
  }
  for (const key of all) assert.ok(documented.has(key), `docs/configuration.md has no table row for the key \`${key}\``);
  for (const key of documented) assert.ok(all.has(key), `docs/configuration.md documents \`${key}\`, which the schema does not have`);
});
