#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import { isWsmodError } from '../errors.ts';
import type { LogLevel } from '../log.ts';
import { check } from './check.ts';
import { init } from './init.ts';
import { serve } from './serve.ts';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be an integer from 0 to 65535');
  return n;
}

function workers(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new InvalidArgumentError('must be a whole number from 1 to 1024');
  return n;
}

const program = new Command('wsmod')
  .description('A WebSocket host: services are plugins, the host is strict RFC 6455 and secure by default.')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the host standalone from a configuration file (default: wsmod.config.* here, else the bundled examples)')
  .argument('[config]', 'configuration file (.yaml, .json, .js, .ts)')
  .option('-p, --port <port>', 'listen on this port instead of the configured addresses (0: any free port)', port)
  .option('-H, --host <address>', 'listen on this address instead of the configured ones')
  .addOption(new Option('--log-level <level>', 'log level (overrides logging.level)').choices(['debug', 'info', 'warn', 'error', 'silent']))
  .option('-w, --workers <n>', 'run n worker processes sharing the listeners (overrides workers; 1: one process)', workers)
  .option('--check-config', 'validate the configuration, load its plugins and type-check TypeScript ones, then exit (non-zero on problems)', false)
  .action(async (config: string | undefined, opts: { port?: number; host?: string; logLevel?: LogLevel; checkConfig: boolean; workers?: number }) => {
    const status = await serve({
      ...(config === undefined ? {} : { config }),
      ...(opts.port === undefined ? {} : { port: opts.port }),
      ...(opts.host === undefined ? {} : { host: opts.host }),
      ...(opts.logLevel === undefined ? {} : { logLevel: opts.logLevel }),
      checkConfig: opts.checkConfig,
      ...(opts.workers === undefined ? {} : { workers: opts.workers }),
    });
    if (status !== undefined) process.exitCode = status;
  });

const list = (value: string, previous: string[] = []): string[] => [
  ...previous,
  ...value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== ''),
];

program
  .command('check')
  .description('run the conformance suite (Autobahn-modeled cases) against a WebSocket echo endpoint')
  .argument('<url>', 'ws:// or wss:// URL of an endpoint that echoes every message')
  .option('--cases <patterns>', 'only these cases, e.g. 1.*,6.4.*', list)
  .option('--exclude <patterns>', 'skip these cases, e.g. 9.*', list)
  .option('--report <dir>', 'where to write index.json and the HTML report', 'wsmod-report')
  .option('--json', 'print the JSON report on stdout instead of the summary table', false)
  .action(async (url: string, opts: { cases?: string[]; exclude?: string[]; report: string; json: boolean }) => {
    process.exitCode = await check(url, { cases: opts.cases ?? [], exclude: opts.exclude ?? [], report: opts.report, json: opts.json });
  });

program
  .command('init')
  .description('scaffold a plugin project (typed plugin, config, a test) that runs with npx wsmod serve')
  .argument('<dir>', 'directory to create (must be empty unless --force)')
  .option('--name <name>', 'package name (default: the directory name)')
  .option('--force', 'write into a non-empty directory', false)
  .option('--wsmod <spec>', 'npm spec to depend on wsmod by (default: this wsmod, packed into vendor/)')
  .action(async (dir: string, opts: { name?: string; force: boolean; wsmod?: string }) => {
    const files = await init(dir, { name: opts.name, force: opts.force, wsmod: opts.wsmod });
    process.stdout.write(`created ${files.length} files in ${dir}:\n${files.map((f) => `  ${f}`).join('\n')}\n\nnext: cd ${dir} && npm install && npm test && npx wsmod serve\n`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = isWsmodError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
  process.stderr.write(`wsmod: ${message}\n`);
  process.exit(1);
});
