#!/usr/bin/env node
// `npm test`: installs the independent peers the suite talks to when they are missing, type-checks,
// builds (the examples import the package by name, which resolves to dist/), then runs every
// *.test.ts under src/ and test/ with node:test. Under CI=true a peer that cannot be installed is an
// error, and the tests that need it fail: nothing is skipped.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ensurePeers } from './peers.mjs';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', cwd: root, ...opts });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

function findTests(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) findTests(p, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}

if (!ensurePeers() && process.env.CI === 'true') {
  console.error('test: a peer could not be installed; the tests that need it will fail');
}
if (run('npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']) !== 0) {
  console.error('test: type check failed');
  process.exit(1);
}
if (run('npx', ['tsc', '-p', 'tsconfig.build.json']) !== 0) {
  console.error('test: build failed');
  process.exit(1);
}
const files = args.length > 0 ? args : [...findTests(join(root, 'src')), ...findTests(join(root, 'test'))].sort();
process.exit(run(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files]));
