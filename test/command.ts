// Running a command as a user would, for the tests that drive npm, the wsmod binary or a scaffolded
// project (test/init.test.ts, test/package.test.ts).
import { spawn } from 'node:child_process';

/**
 * This process's environment without npm's per-run variables (the suite may itself run under `npm
 * test`, whose settings are not the user's) and without NODE_TEST_CONTEXT (else a child's `node
 * --test`, seeing itself inside a test run, would skip its files), plus `extra`.
 */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_/i.test(k) && k !== 'INIT_CWD' && k !== 'NODE_TEST_CONTEXT') env[k] = v;
  }
  return { ...env, ...extra };
}

/** What {@link runCommand} collected; `output` is stdout and stderr interleaved as they arrived. */
export interface CommandResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly output: string;
}

/** Runs a command to completion in `cwd` with {@link childEnv}; kills it after `timeout` ms. */
export function runCommand(
  cmd: string,
  args: readonly string[],
  cwd: string,
  options: { readonly env?: NodeJS.ProcessEnv; readonly timeout?: number } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: childEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let output = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      output += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      output += c.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeout ?? 300_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr, output });
    });
  });
}
