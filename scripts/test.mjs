#!/usr/bin/env node
// `npm test`: installs the independent peers the suite talks to when they are missing, type-checks,
// builds (the examples import the package by name, which resolves to dist/), then runs every
// *.test.ts under src/ and test/ with node:test. Under CI=true a peer that cannot be installed is an
// error, and the tests that need it fail: nothing is skipped.
//
//   node scripts/test.mjs                          every test file
//   node scripts/test.mjs test/a.test.ts ...       only these
//   node scripts/test.mjs --exclude test/a.test.ts every test file but these (.ci/run's Node 24 pass)
//
// The tests run on the Node that runs this script (process.execPath), so putting another Node first
// in PATH runs the whole suite, type check and build included, on that Node.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ensurePeers } from './peers.mjs';

const root = new URL('..', import.meta.url).pathname;
const files = [];
const excluded = new Set();
for (let i = 2; i < process.argv.length; i++) {
  const arg = process.argv[i];
  if (arg === '--exclude') {
    const file = process.argv[++i];
    if (file === undefined) throw new Error('test: --exclude needs a test file');
    excluded.add(relative(root, join(root, file)));
  } else files.push(arg);
}

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

const all = [...findTests(join(root, 'src')), ...findTests(join(root, 'test'))].sort();
for (const file of excluded) {
  // A typo would silently run the file it meant to leave out, or hide that a file was renamed.
  if (!all.includes(file)) throw new Error(`test: --exclude ${file}: no such test file`);
}
const selected = (files.length > 0 ? files : all).filter((f) => !excluded.has(relative(root, join(root, f))));
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
console.error(`test: node ${process.version}, ${selected.length} test files${excluded.size > 0 ? ` (left out: ${[...excluded].join(', ')})` : ''}`);
process.exit(run(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...selected]));
