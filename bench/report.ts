/**
 * Turning runs into figures: the metric rows (each figure, its ratio to ws and to the minimal echo,
 * the target and whether it is met), the printed table, the SVG chart and CPU-profile summaries.
 */
import { readFileSync } from 'node:fs';

export const SERVER_IDS = ['wsmod', 'ws', 'ws-noaddons', 'minimal'] as const;
export type ServerId = (typeof SERVER_IDS)[number];

export const SERVER_LABELS: Record<ServerId, string> = {
  wsmod: 'wsmod',
  ws: 'ws',
  'ws-noaddons': 'ws (no addons)',
  minimal: 'minimal',
};

/** A target: a bound on wsmod/ws, or an absolute bound on wsmod's figure. */
export type Target =
  | { readonly kind: 'ratio-max'; readonly value: number; readonly text: string }
  | { readonly kind: 'ratio-min'; readonly value: number; readonly text: string }
  | { readonly kind: 'abs-max'; readonly value: number; readonly text: string };

export interface MetricRow {
  readonly scenario: string;
  readonly metric: string;
  readonly unit: string;
  readonly better: 'lower' | 'higher';
  readonly values: Partial<Record<ServerId, number>>;
  readonly ratioWs: number | undefined;
  readonly ratioMinimal: number | undefined;
  readonly target: Target | undefined;
  readonly met: boolean | undefined;
  /** Runs whose generator was saturated or whose server core was shared: figures to distrust. */
  readonly flags: readonly string[];
}

function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b <= 0) return undefined;
  return a / b;
}

export function makeRow(
  scenario: string,
  metric: string,
  unit: string,
  better: 'lower' | 'higher',
  values: Partial<Record<ServerId, number>>,
  target: Target | undefined,
  flags: readonly string[] = [],
): MetricRow {
  const ratioWs = ratio(values.wsmod, values.ws);
  const ratioMinimal = ratio(values.wsmod, values.minimal);
  let met: boolean | undefined;
  if (target !== undefined) {
    if (target.kind === 'abs-max') met = values.wsmod === undefined ? undefined : values.wsmod < target.value;
    else if (ratioWs !== undefined) met = target.kind === 'ratio-max' ? ratioWs <= target.value : ratioWs >= target.value;
  }
  return { scenario, metric, unit, better, values, ratioWs, ratioMinimal, target, met, flags };
}

/** A figure with a sensible number of digits. */
export function fmt(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  if (a >= 10000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function fmtRatio(r: number | undefined): string {
  if (r === undefined) return '-';
  return `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}x`;
}

/** The table: scenario | metric | wsmod | ws | ws (no addons) | minimal | wsmod/ws | wsmod/minimal | target | met? */
export function table(rows: readonly MetricRow[]): string {
  const header = ['scenario', 'metric', 'wsmod', 'ws', 'ws (no addons)', 'minimal', 'wsmod/ws', 'wsmod/minimal', 'target', 'met?'];
  const body = rows.map((r) => [
    r.scenario,
    `${r.metric} (${r.unit})`,
    fmt(r.values.wsmod),
    fmt(r.values.ws),
    fmt(r.values['ws-noaddons']),
    fmt(r.values.minimal),
    fmtRatio(r.ratioWs),
    fmtRatio(r.ratioMinimal),
    r.target?.text ?? '',
    r.met === undefined ? (r.target === undefined ? '' : '?') : r.met ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i >= 2 && i <= 7 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)].join('\n');
}

/** The same table in Markdown, for docs/performance.md. */
export function markdownTable(rows: readonly MetricRow[]): string {
  const header = '| scenario | metric | wsmod | ws | ws (no addons) | minimal | wsmod/ws | wsmod/minimal | target | met? |';
  const sep = '|---|---|--:|--:|--:|--:|--:|--:|---|---|';
  const body = rows.map(
    (r) =>
      `| ${r.scenario} | ${r.metric} (${r.unit}) | ${fmt(r.values.wsmod)} | ${fmt(r.values.ws)} | ${fmt(r.values['ws-noaddons'])} | ${fmt(r.values.minimal)} | ${fmtRatio(r.ratioWs)} | ${fmtRatio(r.ratioMinimal)} | ${r.target?.text ?? ''} | ${r.met === undefined ? '' : r.met ? 'yes' : '**no**'} |`,
  );
  return [header, sep, ...body].join('\n');
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * A horizontal bar chart, one group per metric: each server's advantage over ws (ws = 1x; right of the
 * line is better, whatever the metric's direction), on a log scale, with wsmod's target marked.
 */
export function svgChart(rows: readonly MetricRow[], title: string, subtitle: string): string {
  // One bar group per figure that matters: cross-checks and breakdowns stay in the table.
  const charted = rows.filter((r) => r.values.ws !== undefined && r.values.ws > 0 && !(r.target?.text.includes('cross-check') ?? false) && !r.metric.startsWith('of which'));
  const shown: ServerId[] = ['wsmod', 'ws-noaddons', 'minimal'];
  const colors: Record<ServerId, string> = { wsmod: '#1f77b4', ws: '#7f7f7f', 'ws-noaddons': '#bcbd22', minimal: '#2ca02c' };
  const labelW = 300;
  const plotW = 520;
  const barH = 12;
  const groupH = shown.length * barH + 18;
  const top = 84;
  const width = labelW + plotW + 150;
  const height = top + charted.length * groupH + 60;
  const minR = 0.05;
  const maxR = 100;
  const x = (r: number): number => labelW + (Math.log10(Math.min(maxR, Math.max(minR, r))) - Math.log10(minR)) / (Math.log10(maxR) - Math.log10(minR)) * plotW;
  const advantage = (row: MetricRow, id: ServerId): number | undefined => {
    const v = row.values[id];
    const ws = row.values.ws;
    if (v === undefined || ws === undefined || v <= 0 || ws <= 0) return undefined;
    return row.better === 'higher' ? v / ws : ws / v;
  };
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  out.push(`<text x="10" y="22" font-size="16" font-weight="bold">${esc(title)}</text>`);
  out.push(`<text x="10" y="42" fill="#555">${esc(subtitle)}</text>`);
  // Grid and axis labels.
  for (const r of [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]) {
    const gx = x(r).toFixed(1);
    out.push(`<line x1="${gx}" y1="${top - 8}" x2="${gx}" y2="${height - 40}" stroke="${r === 1 ? '#000' : '#ddd'}" stroke-width="${r === 1 ? 1.5 : 1}"/>`);
    out.push(`<text x="${gx}" y="${height - 24}" text-anchor="middle" fill="#333">${r}x</text>`);
    if (r !== 1) out.push(`<text x="${gx}" y="${top - 12}" text-anchor="middle" fill="#999" font-size="10">${r}x</text>`);
  }
  out.push(`<text x="${x(1)}" y="${top - 24}" text-anchor="middle" fill="#000">ws = 1x; right of it = better than ws</text>`);
  charted.forEach((row, g) => {
    const gy = top + g * groupH;
    out.push(`<text x="${labelW - 8}" y="${gy + groupH / 2}" text-anchor="end">${esc(`${row.scenario}: ${row.metric}`)}</text>`);
    shown.forEach((id, k) => {
      const a = advantage(row, id);
      if (a === undefined) return;
      const y = gy + k * barH + 4;
      const x0 = x(1);
      const x1 = x(a);
      out.push(`<rect x="${Math.min(x0, x1).toFixed(1)}" y="${y}" width="${Math.max(1, Math.abs(x1 - x0)).toFixed(1)}" height="${barH - 2}" fill="${colors[id]}"><title>${esc(`${SERVER_LABELS[id]}: ${a.toFixed(2)}x ws`)}</title></rect>`);
      out.push(`<text x="${(Math.max(x0, x1) + 4).toFixed(1)}" y="${y + barH - 3}" font-size="10" fill="#333">${a.toFixed(2)}x</text>`);
    });
    const t = row.target;
    if (t !== undefined && t.kind !== 'abs-max') {
      const goal = t.kind === 'ratio-min' ? t.value : 1 / t.value; // as an advantage over ws
      const tx = x(goal).toFixed(1);
      out.push(`<line x1="${tx}" y1="${gy + 2}" x2="${tx}" y2="${gy + shown.length * barH + 4}" stroke="#d62728" stroke-width="2" stroke-dasharray="3,2"><title>target ${esc(t.text)}</title></line>`);
    }
    out.push(`<text x="${labelW + plotW + 10}" y="${gy + groupH / 2}" fill="${row.met === false ? '#d62728' : '#2ca02c'}">${row.met === undefined ? '' : row.met ? 'target met' : 'target missed'}</text>`);
  });
  // Legend.
  let lx = 10;
  const ly = height - 8;
  for (const id of shown) {
    out.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="10" fill="${colors[id]}"/><text x="${lx + 16}" y="${ly}">${esc(SERVER_LABELS[id])}</text>`);
    lx += 130;
  }
  out.push(`<line x1="${lx}" y1="${ly - 5}" x2="${lx + 14}" y2="${ly - 5}" stroke="#d62728" stroke-width="2" stroke-dasharray="3,2"/><text x="${lx + 18}" y="${ly}">wsmod target</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileEntry {
  readonly name: string;
  readonly where: string;
  readonly selfMs: number;
  readonly share: number;
}

/**
 * Self time per function in a .cpuprofile, counting only samples inside [fromUs, toUs] (CLOCK_MONOTONIC
 * µs, the profile's clock) when given. Shares are of the busy (non-idle) samples.
 */
export function summarizeProfile(file: string, fromUs?: number, toUs?: number, top = 20): { busyMs: number; idleMs: number; entries: ProfileEntry[]; byArea: ProfileEntry[] } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, { name: string; where: string; us: number }>();
  const area = new Map<string, number>();
  let t = profile.startTime;
  let busy = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if ((fromUs !== undefined && t < fromUs) || (toUs !== undefined && t > toUs)) continue;
    const node = byId.get(profile.samples[i]!);
    if (node === undefined) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName === '' ? '(anonymous)' : functionName;
    if (name === '(idle)') {
      idle += dt;
      continue;
    }
    busy += dt;
    const short = url.replace(/^file:\/\/.*?\/(dist|node_modules|bench)\//, '$1/');
    const where = url === '' ? '' : `${short}:${lineNumber + 1}`;
    const key = `${name}@${where}`;
    const e = self.get(key) ?? { name, where, us: 0 };
    e.us += dt;
    self.set(key, e);
    const a = url === '' ? name.startsWith('(') ? name : '(native / V8 builtins)' : url.startsWith('node:') ? 'node: internals' : short.startsWith('dist/') ? `wsmod ${short.replace(/^dist\//, '')}` : short.startsWith('node_modules/') ? short.split('/').slice(0, 2).join('/') : short;
    area.set(a, (area.get(a) ?? 0) + dt);
  }
  const entries = [...self.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({ name: e.name, where: e.where, selfMs: e.us / 1000, share: busy > 0 ? e.us / busy : 0 }));
  const byArea = [...area.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15)
    .map(([name, us]) => ({ name, where: '', selfMs: us / 1000, share: busy > 0 ? us / busy : 0 }));
  return { busyMs: busy / 1000, idleMs: idle / 1000, entries, byArea };
}
