#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import { isWsmodError } from '../errors.ts';
import { check } from './check.ts';
import { serve } from './serve.ts';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be an integer from 0 to 65535');
  return n;
}

function milliseconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a non-negative number of milliseconds');
  return n;
}

const program = new Command('wsmod')
  .description('A WebSocket host: services are plugins, the host is strict RFC 6455 and secure by default.')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the host standalone (the example echo plugin on /echo)')
  .option('-p, --port <port>', 'TCP port (0: any free port)', port, 8080)
  .option('-H, --host <address>', 'address to listen on', '127.0.0.1')
  .addOption(
    new Option('--log-level <level>', 'log level').choices(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  )
  .option('--shutdown-deadline <ms>', 'time open sessions get to close on SIGTERM/SIGINT', milliseconds, 10000)
  .action(async (opts: { port: number; host: string; logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent'; shutdownDeadline: number }) => {
    await serve({ port: opts.port, host: opts.host, logLevel: opts.logLevel, shutdownDeadline: opts.shutdownDeadline });
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

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = isWsmodError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
  process.stderr.write(`wsmod: ${message}\n`);
  process.exit(1);
});
