// Small hand-written SVG charts of a bench run (no chart library): each latency table as bars (p50, with p90 and
// p99 marks), and every target whose figure is a ratio as a bar against the target's line. Written by run.ts.
import type { BenchReport, Table } from './stats.ts';

const WIDTH = 760;
const LABEL = 300;
const ROW = 26;
const TOP = 46;

const esc = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const num = (cell: string | number | undefined): number => (typeof cell === 'number' ? cell : Number.parseFloat(String(cell ?? '').replace(/,/g, '')));

function frame(title: string, rows: number, body: string[], scale: string): string {
  const height = TOP + rows * ROW + 34;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<text x="10" y="36" fill="#555">${esc(scale)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

/** A table built with LATENCY_COLUMNS: one bar per variant (p50), with p90 and p99 marks; or null when it is not one. */
export function latencyChart(table: Table): string | null {
  const at = (name: string) => table.columns.indexOf(name);
  const [p50, p90, p99] = [at('p50 ms'), at('p90 ms'), at('p99 ms')];
  if (p50 < 0 || p90 < 0 || p99 < 0 || table.rows.length === 0) return null;
  const rows = table.rows.map((r) => ({ name: String(r[0]), p50: num(r[p50]), p90: num(r[p90]), p99: num(r[p99]) })).filter((r) => Number.isFinite(r.p50));
  const max = Math.max(...rows.map((r) => (Number.isFinite(r.p99) ? r.p99 : r.p50)), 1e-9);
  const x = (v: number) => Math.round((LABEL + (Math.min(v, max) / max) * (WIDTH - LABEL - 110)) * 10) / 10;
  const body = rows.flatMap((r, i) => {
    const y = TOP + i * ROW;
    const marks = [r.p90, r.p99].filter(Number.isFinite).map((v, k) => `<line x1="${x(v)}" x2="${x(v)}" y1="${y + 2}" y2="${y + 18}" stroke="${k === 0 ? '#e69f00' : '#d55e00'}" stroke-width="2"/>`);
    return [
      `<text x="${LABEL - 6}" y="${y + 14}" text-anchor="end">${esc(r.name.slice(0, 48))}</text>`,
      `<rect x="${LABEL}" y="${y + 4}" width="${Math.max(1, x(r.p50) - LABEL)}" height="12" fill="#0072b2"/>`,
      ...marks,
      `<text x="${x(Number.isFinite(r.p99) ? r.p99 : r.p50) + 6}" y="${y + 14}" fill="#333">${r.p50} / ${r.p99}</text>`,
    ];
  });
  return frame(table.title, rows.length, body, `bar: p50; orange: p90; red: p99 (ms, axis to ${max}); labels: p50 / p99`);
}

/** Targets written as a ratio bound ("≤ 1.2x", "≥ 0.5x") whose figure starts with a ratio: each bar against its line. */
export function targetChart(reports: readonly BenchReport[]): string | null {
  const rows = reports.flatMap((report) => report.targets.flatMap((t) => {
    const bound = /([≤≥])\s*([\d.]+)x/.exec(t.target);
    const actual = /^([\d.]+)x/.exec(t.actual);
    return bound && actual ? [{ label: `${report.name}: ${t.target}`, actual: Number(actual[1]), bound: Number(bound[2]), atMost: bound[1] === '≤', met: t.met }] : [];
  }));
  if (rows.length === 0) return null;
  const body = rows.flatMap((r, i) => {
    const y = TOP + i * ROW;
    // Each row on its own scale (ratios of 1.2 and 8 side by side): the target's line sits at 60 % of it.
    const max = Math.max(r.actual, r.bound / 0.6);
    const x = (v: number) => Math.round((LABEL + (v / max) * (WIDTH - LABEL - 110)) * 10) / 10;
    return [
      `<text x="${LABEL - 6}" y="${y + 14}" text-anchor="end">${esc(r.label.slice(0, 50))}</text>`,
      `<rect x="${LABEL}" y="${y + 4}" width="${Math.max(1, x(r.actual) - LABEL)}" height="12" fill="${r.met ? '#009e73' : '#d55e00'}"/>`,
      `<line x1="${x(r.bound)}" x2="${x(r.bound)}" y1="${y}" y2="${y + 20}" stroke="#000" stroke-dasharray="3 2"/>`,
      `<text x="${Math.max(x(r.actual), x(r.bound)) + 6}" y="${y + 14}" fill="#333">${r.actual}x (${r.atMost ? '≤' : '≥'} ${r.bound}x)</text>`,
    ];
  });
  return frame('Figures against their targets (ratios)', rows.length, body, 'bar: measured (green met, red missed); dashed line: the target; each row on its own scale');
}
