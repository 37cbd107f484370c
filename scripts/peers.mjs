// The independent peers the tests talk to, and how to install the missing ones (Debian packages).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Debian's Chromium (test/interop-chromium.test.ts drives it headless). */
export const CHROMIUM = '/usr/bin/chromium';

/** Debian's own Python, where Debian's python3-* packages are importable (a pyenv python3 may shadow it). */
export const PYTHON = '/usr/bin/python3';

const PEERS = [
  { name: 'python3-websockets', present: () => ok(PYTHON, ['-c', 'import websockets']), packages: ['python3-websockets'] },
  { name: 'chromium', present: () => existsSync(CHROMIUM), packages: ['chromium'] },
  // test/redis-backplane.test.ts starts its own servers (test/peers/redis.ts); Debian's service is not used.
  { name: 'redis-server', present: () => ok('redis-server', ['--version']), packages: ['redis-server'] },
];

function ok(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.status === 0;
}

/** Installs missing peers with apt-get (root needed); returns true when all are present afterwards. */
export function ensurePeers() {
  const missing = PEERS.filter((p) => !p.present());
  if (missing.length === 0) return true;
  const packages = missing.flatMap((p) => p.packages);
  console.error(`test: installing missing peers: ${packages.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!ok('apt-get', ['install', '-y', '-q', ...packages])) {
    spawnSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
    spawnSync('apt-get', ['install', '-y', '-q', ...packages], { stdio: 'inherit', env });
  }
  const still = missing.filter((p) => !p.present());
  for (const p of still) console.error(`test: peer ${p.name} is still missing`);
  return still.length === 0;
}
