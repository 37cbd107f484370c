import { CaseSession, type CaseSessionOptions } from './session.ts';
import type { CaseDefinition, CaseResult } from './types.ts';

/** Options of {@link runCases}. */
export interface RunOptions extends CaseSessionOptions {
  /** Called after each case. */
  readonly onResult?: (result: CaseResult, index: number, total: number) => void;
  /** Called before each case. */
  readonly onStart?: (def: CaseDefinition, index: number, total: number) => void;
}

/** Runs cases one after another, each on a fresh connection to `url`. */
export async function runCases(url: string, cases: readonly CaseDefinition[], options: RunOptions = {}): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (let i = 0; i < cases.length; i++) {
    const def = cases[i]!;
    options.onStart?.(def, i, cases.length);
    const result = await new CaseSession(url, def, options).run();
    results.push(result);
    options.onResult?.(result, i, cases.length);
  }
  return results;
}

/**
 * Selects cases by id patterns: "6.4.*" matches 6.4.1…, "1.*" matches group 1, "7.1.1" one case.
 * With no `include`, every case; `exclude` removes matches. Order is the catalogue's.
 */
export function selectCases(
  all: readonly CaseDefinition[],
  include: readonly string[] = [],
  exclude: readonly string[] = [],
): CaseDefinition[] {
  const matchers = (patterns: readonly string[]) => patterns.map(patternToRegExp);
  const inc = matchers(include);
  const exc = matchers(exclude);
  return all.filter((c) => (inc.length === 0 || inc.some((m) => m.test(c.id))) && !exc.some((m) => m.test(c.id)));
}

function patternToRegExp(pattern: string): RegExp {
  const p = pattern.trim();
  if (!/^[0-9.*]+$/.test(p)) throw new Error(`invalid case pattern "${pattern}": use ids like 6.4.1 or 6.4.* or 1.*`);
  const body = p
    .split('.')
    .map((part) => (part === '*' ? '\\d+(?:\\.\\d+)*' : part.replace(/\*/g, '\\d*')))
    .join('\\.');
  return new RegExp(`^${body}$`);
}
