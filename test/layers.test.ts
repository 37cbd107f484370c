// The layer lint (.dependency-cruiser.mjs): src/ passes it, and a crafted tree with one violation of
// each rule fails it, naming the rule and the import. This test is how `npm test` runs the lint.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEPCRUISE = join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
const CONFIG = join(ROOT, '.dependency-cruiser.mjs');

interface Violation {
  readonly from: string;
  readonly to: string;
  readonly rule: { readonly name: string; readonly severity: string };
}

/** Runs the lint over `src` in `cwd` with one output type; resolves with its exit status and output. */
function depcruise(cwd: string, outputType: 'json' | 'err'): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [DEPCRUISE, 'src', '--config', CONFIG, '--output-type', outputType], { cwd, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

/**
 * The lint as `npm test` sees it: the exit status of the human-readable run (the JSON reporter always
 * exits 0), and the violations from the JSON run.
 */
async function cruise(cwd: string): Promise<{ status: number; violations: Violation[]; output: string }> {
  const [err, json] = await Promise.all([depcruise(cwd, 'err'), depcruise(cwd, 'json')]);
  let violations: Violation[];
  try {
    violations = (JSON.parse(json.stdout) as { summary: { violations: Violation[] } }).summary.violations;
  } catch {
    throw new Error(`depcruise printed no JSON (status ${json.status}):\n${json.stdout}\n${json.stderr}`);
  }
  return { status: err.status, violations, output: err.stdout + err.stderr };
}

let fixture: string;
before(async () => {
  fixture = await mkdtemp(join(tmpdir(), 'wsmod-layers-'));
});
after(async () => {
  await rm(fixture, { recursive: true, force: true });
});

test('src/ keeps its layers: the lint passes', { timeout: 120_000 }, async () => {
  const r = await cruise(ROOT);
  assert.deepEqual(
    r.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`),
    [],
  );
  assert.equal(r.status, 0, r.output);
});

test('each rule fails on its violation, type-only imports included', { timeout: 120_000 }, async () => {
  const files: Record<string, string> = {
    // Allowed: every import below goes inward or stays inside a layer.
    'src/errors.ts': 'export const E = 1;\n',
    'src/protocol/frame.ts': "import { E } from '../errors.ts';\nexport const frame = E;\n",
    'src/connection/conn.ts': "import { frame } from '../protocol/frame.ts';\nexport const conn = frame;\n",
    'src/plugin/api.ts': "export interface Plugin { name: string }\n",
    'src/pubsub/broker.ts': "import { conn } from '../connection/conn.ts';\nimport type { Plugin } from '../plugin/api.ts';\nexport const broker = (p: Plugin) => conn + p.name.length;\n",
    'src/host/host.ts': "import { conn } from '../connection/conn.ts';\nimport type { Plugin } from '../plugin/api.ts';\nimport { broker } from '../pubsub/broker.ts';\nexport const host = (p: Plugin) => conn + p.name.length + broker(p);\n",
    'src/client/client.ts': "import { conn } from '../connection/conn.ts';\nexport const client = conn;\n",
    'src/check/run.ts': "import { client } from '../client/client.ts';\nexport const run = client;\n",
    'src/cluster/primary.ts': "import { host } from '../host/host.ts';\nexport const primary = host;\n",
    'src/cli/main.ts': "import { run } from '../check/run.ts';\nimport { host } from '../host/host.ts';\nimport { primary } from '../cluster/primary.ts';\nexport const main = [run, host, primary];\n",
    'src/index.ts': "export { host } from './host/host.ts';\n",
    'node_modules/some-lib/package.json': '{ "name": "some-lib", "version": "1.0.0", "main": "index.js" }\n',
    'node_modules/some-lib/index.js': 'exports.x = 1;\n',
    // Violations, one per rule.
    'src/prng.ts': "import { frame } from './protocol/frame.ts';\nexport const prng = frame;\n",
    'src/protocol/bad.ts': "import { host } from '../host/host.ts';\nexport const bad = host;\n",
    'src/connection/bad.ts': "import type { Plugin } from '../plugin/api.ts';\nexport type Bad = Plugin;\n",
    'src/connection/dep.ts': "import { x } from 'some-lib';\nexport const dep = x;\n",
    'src/host/bad.ts': "import { client } from '../client/client.ts';\nexport const bad = client;\n",
    'src/plugin/bad.ts': "import type { broker } from '../pubsub/broker.ts';\nexport type Bad = typeof broker;\n",
    'src/pubsub/bad.ts': "import type { host } from '../host/host.ts';\nexport type Bad = typeof host;\n",
    'src/client/bad.ts': "import { run } from '../check/run.ts';\nexport const bad = run;\n",
    'src/check/bad.ts': "import { load } from '../config/load.ts';\nexport const bad = load;\n",
    'src/config/load.ts': "import { main } from '../cli/main.ts';\nexport const load = main;\n",
    'src/cluster/bad.ts': "import { client } from '../client/client.ts';\nexport const bad = client;\n",
    'src/check/workers.ts': "import { primary } from '../cluster/primary.ts';\nexport const workers = primary;\n",
    'src/plugin/typo.ts': "import { nothing } from './nowhere.ts';\nexport const typo = nothing;\n",
  };
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(fixture, path)), { recursive: true });
    await writeFile(join(fixture, path), text);
  }
  const r = await cruise(fixture);
  assert.notEqual(r.status, 0, 'the lint exits non-zero on a violation');
  assert.deepEqual(
    r.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`).sort(),
    [
      'check-imports-config: src/check/bad.ts → src/config/load.ts',
      'cluster-imports-higher-layer: src/cluster/bad.ts → src/client/client.ts',
      'connection-imports-higher-layer: src/connection/bad.ts → src/plugin/api.ts',
      'host-imports-higher-layer: src/host/bad.ts → src/client/client.ts',
      'imports-cli: src/config/load.ts → src/cli/main.ts',
      'imports-cluster: src/check/workers.ts → src/cluster/primary.ts',
      'leaf-imports-layer: src/prng.ts → src/protocol/frame.ts',
      'not-to-unresolvable: src/plugin/typo.ts → ./nowhere.ts',
      'plugin-imports-higher-layer: src/plugin/bad.ts → src/pubsub/broker.ts',
      'protocol-imports-higher-layer: src/protocol/bad.ts → src/host/host.ts',
      'pubsub-imports-higher-layer: src/pubsub/bad.ts → src/host/host.ts',
      'runtime-dependency-in-engine: src/connection/dep.ts → node_modules/some-lib/index.js',
      'tool-imports-another-tool: src/client/bad.ts → src/check/run.ts',
    ],
  );
  assert.ok(r.violations.every((v) => v.rule.severity === 'error'));
});
