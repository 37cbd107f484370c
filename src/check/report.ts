import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CaseResult, Verdict } from './types.ts';

/** A whole run: where, when, and every case's result. */
export interface CheckReport {
  readonly tool: string;
  readonly url: string;
  readonly started: string;
  readonly durationMs: number;
  readonly summary: Readonly<Record<Verdict, number>> & { readonly total: number };
  readonly results: readonly CaseResult[];
}

const VERDICTS: readonly Verdict[] = ['OK', 'NON-STRICT', 'INFORMATIONAL', 'UNIMPLEMENTED', 'FAILED'];

/** Counts results by verdict. */
export function summarize(results: readonly CaseResult[]): CheckReport['summary'] {
  const counts = Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number>;
  for (const r of results) counts[r.verdict]++;
  return { ...counts, total: results.length };
}

/** The summary as a text table, one row per group plus a total (for the terminal). */
export function summaryTable(results: readonly CaseResult[]): string {
  const groups = new Map<string, CaseResult[]>();
  for (const r of results) {
    const g = r.id.split('.')[0] ?? r.id;
    const list = groups.get(g) ?? [];
    list.push(r);
    groups.set(g, list);
  }
  const rows: string[][] = [['group', 'cases', ...VERDICTS]];
  for (const [g, list] of groups) {
    const s = summarize(list);
    rows.push([g, String(s.total), ...VERDICTS.map((v) => String(s[v]))]);
  }
  const all = summarize(results);
  rows.push(['total', String(all.total), ...VERDICTS.map((v) => String(all[v]))]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const sep = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(rows[0]!), sep, ...rows.slice(1, -1).map(line), sep, line(rows.at(-1)!)].join('\n');
}

/** Writes `index.json` (the whole report), `index.html` and one `case-<id>.html` per case into `dir`. */
export async function writeReports(dir: string, report: CheckReport): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'index.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(join(dir, 'index.html'), indexPage(report));
  for (const r of report.results) await writeFile(join(dir, casePage(r.id)), casePageHtml(report, r));
}

/** File name of a case's page. */
export function casePage(id: string): string {
  return `case-${id.replace(/[^0-9.]/g, '_')}.html`;
}

const COLORS: Record<string, string> = {
  OK: '#2e7d32',
  'NON-STRICT': '#9e9d24',
  INFORMATIONAL: '#1565c0',
  UNIMPLEMENTED: '#6d4c41',
  FAILED: '#c62828',
  'WRONG CODE': '#ef6c00',
  UNCLEAN: '#ef6c00',
  'FAILED BY CLIENT': '#ef6c00',
};

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function badge(v: string): string {
  return `<span class="badge" style="background:${COLORS[v] ?? '#555'}">${esc(v)}</span>`;
}

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f4f4f4}
.badge{color:#fff;border-radius:3px;padding:1px 6px;font-size:12px;white-space:nowrap}
pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:40em}.tx{color:#0d47a1}.rx{color:#1b5e20}.info{color:#555}`;

function indexPage(report: CheckReport): string {
  const s = report.summary;
  const rows = report.results
    .map(
      (r) =>
        `<tr><td><a href="${casePage(r.id)}">${esc(r.id)}</a></td><td>${badge(r.verdict)}</td><td>${badge(r.behavior)}</td>` +
        `<td>${badge(r.behaviorClose)}</td><td>${r.remoteCloseCode ?? ''}</td><td>${r.reportTime ? `${r.duration.toFixed(1)} ms` : ''}</td>` +
        `<td>${esc(r.description)}</td></tr>`,
    )
    .join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>wsmod check: ${esc(report.url)}</title><style>${STYLE}</style></head><body>
<h1>wsmod check</h1>
<p>Server <code>${esc(report.url)}</code>, started ${esc(report.started)}, ${(report.durationMs / 1000).toFixed(1)} s.</p>
<p>${VERDICTS.map((v) => `${badge(v)} ${s[v]}`).join(' &nbsp; ')} &nbsp; of ${s.total} cases.</p>
<table><tr><th>case</th><th>verdict</th><th>behaviour</th><th>close</th><th>close code</th><th>duration</th><th>description</th></tr>
${rows}
</table></body></html>
`;
}

function casePageHtml(report: CheckReport, r: CaseResult): string {
  const wire = r.wire.map((w) => `<span class="${w.dir}">${w.t.toFixed(3).padStart(10)} ms ${w.dir.padEnd(4)} ${w.bytes === undefined ? '' : `[${w.bytes}] `}${esc(w.text)}</span>`).join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>Case ${esc(r.id)}</title><style>${STYLE}</style></head><body>
<p><a href="index.html">← all cases</a> · <code>${esc(report.url)}</code></p>
<h1>Case ${esc(r.id)} ${badge(r.verdict)}</h1>
<table>
<tr><th>description</th><td>${esc(r.description)}</td></tr>
<tr><th>expectation</th><td>${esc(r.expectation)}</td></tr>
<tr><th>behaviour</th><td>${badge(r.behavior)} ${esc(r.result)}</td></tr>
<tr><th>close behaviour</th><td>${badge(r.behaviorClose)} ${esc(r.resultClose)}</td></tr>
<tr><th>duration</th><td>${r.duration.toFixed(3)} ms</td></tr>
<tr><th>closed by the client</th><td>${r.closedByMe}</td></tr>
<tr><th>dropped by the client</th><td>${r.droppedByMe}</td></tr>
<tr><th>clean close</th><td>${r.wasClean}</td></tr>
<tr><th>server close code</th><td>${r.remoteCloseCode ?? 'none'} ${esc(r.remoteCloseReason ?? '')}</td></tr>
</table>
<h2>Expected</h2><pre>${esc(JSON.stringify({ events: r.expected, close: r.expectedClose }, null, 2))}</pre>
<h2>Observed</h2><pre>${esc(JSON.stringify(r.observed, null, 2))}</pre>
${r.notes.length > 0 ? `<h2>Notes</h2><pre>${esc(r.notes.join('\n'))}</pre>` : ''}
<h2>Wire log</h2><pre>${wire}</pre>
</body></html>
`;
}
