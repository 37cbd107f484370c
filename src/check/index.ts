/**
 * `wsmod/check`: the Autobahn-modeled conformance suite behind `wsmod check`, as a library: the case
 * catalogue, case selection, the runner and the reports.
 */
export { ALL_CASES, BASE_CASES, DEFLATE_CASES } from './catalog.ts';
export { runCases, selectCases, type RunOptions } from './runner.ts';
export { type CheckReport, summarize, summaryTable, writeReports } from './report.ts';
export type { CaseDefinition, CaseResult, Verdict } from './types.ts';
