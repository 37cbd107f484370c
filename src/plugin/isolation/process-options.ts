/**
 * The options of a process plugin, defined once: createProcessPlugin parses with this schema, and the
 * configuration file's `command` routes take the same keys (with units) from {@link processDirectives}.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import type { z as zt } from 'zod';
import { WsmodError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { ProcessPluginOptions } from './process.ts';
import { type Units, checkOptions, count, expecting, flag, once, plainUnits, problemText, strictObject, text, zod } from '../../option-schema.ts';

/** The defaults of the process plugin's options. */
export const PROCESS_DEFAULTS = {
  maxProcesses: 64,
  killGrace: 2000,
  maxLineLength: 1024 * 1024,
  maxInputBuffer: 1024 * 1024,
} as const;

/** `command`: a shell line (run with /bin/sh -c), or `[program, ...args]` exec'd directly. */
export function commandSchema(): zt.ZodType<string | readonly string[], unknown> {
  const z = zod();
  const message = expecting('a shell command line, or a list [program, ...args] of non-empty strings', 'write for example command: [python3, ./greeter.py]');
  const line = z.string({ error: message }).refine((s) => s.trim() !== '', { error: message });
  return z.union([line, z.array(text(message), { error: message }).min(1, { error: message })], { error: message });
}

/** The keys a process route adds to a route's directives, with sizes and durations written in `units`. */
export function processDirectives(units: Units) {
  const z = zod();
  return {
    binary: flag().optional(),
    maxProcesses: count(1, 'at 0 every upgrade would be refused').optional(),
    killGrace: units.duration(0).optional(),
    env: z
      .record(z.string(), z.string({ error: expecting('a string value', 'quote numbers: "8080"') }), { error: 'an object of NAME: value' })
      .superRefine((env, ctx) => {
        for (const name of Object.keys(env)) {
          if (name === '' || name.includes('=')) {
            ctx.addIssue({ code: 'custom', path: [name], message: 'an environment variable name without "="', params: { found: JSON.stringify(name) } });
          }
        }
      })
      .optional(),
    maxLineLength: units.size(1).optional(),
    maxInputBuffer: units.size(0).optional(),
  };
}

const processOptionsSchema = once(() =>
  strictObject(
    {
      command: commandSchema(),
      baseDir: text('a non-empty folder path'),
      path: zod().string({ error: 'a string (the route path)' }),
      log: zod().unknown(),
      options: zod()
        .unknown()
        .superRefine((value, ctx) => {
          try {
            JSON.stringify(value);
          } catch (err) {
            ctx.addIssue({ code: 'custom', message: `a value JSON can hold, for WSMOD_OPTIONS (${(err as Error).message.split('\n')[0]!})` });
          }
        })
        .optional(),
      ...processDirectives(plainUnits),
    },
    'process plugin options: an object with command, baseDir, path and log',
  ),
);

/** What a process is spawned with: the program and its arguments. */
export interface ProcessProgram {
  readonly program: string;
  readonly args: readonly string[];
}

/**
 * The program a command runs: `/bin/sh` for a shell line; for a list, its first entry, a relative
 * path (`./count`) resolved from `baseDir` and a bare name left for PATH, as a shell would.
 */
export function programOf(command: string | readonly string[], baseDir: string): ProcessProgram {
  if (typeof command === 'string') return { program: '/bin/sh', args: ['-c', command] };
  const [first = '', ...args] = command;
  return { program: first.includes('/') && !isAbsolute(first) ? resolve(baseDir, first) : first, args };
}

/** The options of a process plugin with every default applied. */
export interface ResolvedProcessOptions extends ProcessProgram {
  readonly baseDir: string;
  readonly path: string;
  readonly log: Logger;
  readonly binary: boolean;
  readonly maxProcesses: number;
  readonly killGrace: number;
  readonly env: Readonly<Record<string, string>>;
  readonly optionsJson: string | undefined;
  readonly maxLineLength: number;
  readonly maxInputBuffer: number;
}

/** The options given to createProcessPlugin (see ProcessPluginOptions in process.ts). */
interface ProcessOptionsInput {
  readonly command: string | readonly string[];
  readonly baseDir: string;
  readonly path: string;
  readonly log: Logger;
  readonly options?: unknown;
}

/** Parses a process plugin's options, refusing bad ones with WSMOD_ERR_INVALID_OPTION, and applies the defaults. */
export function resolveProcessOptions(opts: ProcessOptionsInput): ResolvedProcessOptions {
  const checked = checkOptions(processOptionsSchema(), opts);
  if (!checked.ok) {
    const at = typeof opts === 'object' && opts !== null && typeof opts.path === 'string' ? ` ${opts.path}` : '';
    throw new WsmodError('WSMOD_ERR_INVALID_OPTION', `process plugin${at}: ${problemText(checked.problems)}`);
  }
  const o = checked.value;
  return {
    ...programOf(o.command, o.baseDir),
    baseDir: resolve(o.baseDir),
    path: o.path,
    log: opts.log,
    binary: o.binary ?? false,
    maxProcesses: o.maxProcesses ?? PROCESS_DEFAULTS.maxProcesses,
    killGrace: o.killGrace ?? PROCESS_DEFAULTS.killGrace,
    env: o.env ?? {},
    optionsJson: o.options === undefined ? undefined : JSON.stringify(o.options),
    maxLineLength: o.maxLineLength ?? PROCESS_DEFAULTS.maxLineLength,
    maxInputBuffer: o.maxInputBuffer ?? PROCESS_DEFAULTS.maxInputBuffer,
  };
}

/** Shell words that are not programs on PATH: a command line starting with one is not looked up. */
const SHELL_WORDS = new Set(
  'exec eval cd echo printf read test [ true false trap set unset export readonly shift wait kill command type umask ulimit times . : if then else elif fi for while until do done case esac { } ! time return exit break continue local alias'.split(' '),
);

/**
 * Why the program of `command` cannot be run, or undefined when it can (or cannot be known without
 * running a shell). A path is checked where it points (relative to `baseDir`); a bare name is looked
 * up on PATH like a shell does. For a shell line, its first word is checked when it is a plain word
 * that is not a shell keyword or builtin.
 */
export function programProblem(command: string | readonly string[], baseDir: string, pathVariable = process.env['PATH'] ?? ''): string | undefined {
  let name: string;
  if (typeof command === 'string') {
    const first = /^\s*([^\s;&|<>()$`'"\\=*?]+)(?=\s|$)/.exec(command)?.[1];
    if (first === undefined || SHELL_WORDS.has(first)) return undefined;
    name = first;
  } else {
    name = command[0] ?? '';
  }
  if (name.includes('/')) {
    const file = isAbsolute(name) ? name : resolve(baseDir, name);
    return executableProblem(file) === undefined ? undefined : `"${name}": ${executableProblem(file)!} (looked at ${file})`;
  }
  const dirs = pathVariable.split(delimiter).filter((d) => d !== '');
  for (const dir of dirs) {
    if (executableProblem(join(resolve(baseDir, dir), name)) === undefined) return undefined;
  }
  return `"${name}": not found on PATH (searched ${dirs.length === 0 ? 'nothing: PATH is empty' : dirs.join(delimiter)})`;
}

function executableProblem(file: string): string | undefined {
  try {
    if (!statSync(file).isFile()) return 'not a file';
    accessSync(file, constants.X_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? 'no such file' : code === 'EACCES' ? 'not executable (chmod +x it)' : `cannot be run (${code ?? 'unknown'})`;
  }
}

// ProcessPluginOptions (process.ts) is what users read; the schema is what runs. Keep their keys the same.
type SameKeys<A, B> = [Exclude<keyof A, keyof B>, Exclude<keyof B, keyof A>] extends [never, never] ? true : false;
const processKeysMatch: SameKeys<ProcessPluginOptions, ReturnType<ReturnType<typeof processOptionsSchema>['parse']>> = true;
void processKeysMatch;
