// Dependency-free SVG charts for bench/REPORT.md (issue 6: ROC curves, latency per stage,
// throughput vs gallery size). Every chart carries a caption naming the machine and the command.

export type Point = readonly [number, number];

export interface Series {
  name: string;
  points: readonly Point[];
}

export interface LineChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Logarithmic x axis (points with x <= 0 are left out). */
  xLog?: boolean;
  yLog?: boolean;
  /** Axis ranges; default: the data's, widened to whole ticks. */
  xDomain?: Point;
  yDomain?: Point;
  series: readonly Series[];
  /** Dashed vertical reference lines, e.g. FAR 1e-3. */
  xMarks?: readonly { x: number; label: string }[];
  /** Lines under the plot: machine, versions, command (see `machineCaption`). */
  caption?: readonly string[];
  width?: number;
  height?: number;
}

export interface BarChartSpec {
  title: string;
  yLabel: string;
  bars: readonly { label: string; value: number }[];
  /** Printed after each bar's value, e.g. ' ms'. */
  unit?: string;
  caption?: readonly string[];
  width?: number;
  height?: number;
}

// Okabe-Ito: distinguishable with the common colour-vision deficiencies.
const COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442'];
const FONT = 'font-family="sans-serif" font-size="12"';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (v: number): string => (Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(0) : String(Number(v.toPrecision(4))));
const px = (v: number): string => v.toFixed(1);

/** One caption line naming where and how a figure was measured. */
export function machineCaption(machine: Record<string, unknown>, command: string): string[] {
  const m = (k: string): string => {
    const v = machine[k];
    return typeof v === 'string' || typeof v === 'number' ? String(v) : 'unknown';
  };
  return [`${m('cpu')}, ${m('cores')} cores, Node ${m('node')}, onnxruntime-node ${m('onnxruntime')}, commit ${m('commit')}`, command];
}

interface Axis {
  lo: number;
  hi: number;
  log: boolean;
  ticks: number[];
}

function axis(values: number[], log: boolean, domain?: Point): Axis {
  const finite = values.filter((v) => Number.isFinite(v) && (!log || v > 0));
  let lo = domain?.[0] ?? Math.min(...finite);
  let hi = domain?.[1] ?? Math.max(...finite);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = log ? [1, 10] : [0, 1];
  if (log) {
    const a = Math.floor(Math.log10(lo) + 1e-9), b = Math.ceil(Math.log10(hi) - 1e-9);
    const [ea, eb] = domain ? [Math.log10(lo), Math.log10(hi)] : [a, Math.max(b, a + 1)];
    const ticks: number[] = [];
    for (let e = Math.ceil(ea - 1e-9); e <= eb + 1e-9; e++) ticks.push(10 ** e);
    return { lo: 10 ** ea, hi: 10 ** eb, log, ticks };
  }
  if (hi === lo) [lo, hi] = [lo - 1, hi + 1];
  const raw = (hi - lo) / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((s) => s * mag >= raw) ?? 10) * mag;
  if (!domain) [lo, hi] = [Math.floor(lo / step) * step, Math.ceil(hi / step) * step];
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) ticks.push(Math.round(t / step) * step);
  return { lo, hi, log, ticks };
}

function scale(a: Axis, from: number, to: number): (v: number) => number {
  const f = (v: number): number => (a.log ? Math.log10(v) : v);
  const [l, h] = [f(a.lo), f(a.hi)];
  return (v) => from + ((f(v) - l) / (h - l || 1)) * (to - from);
}

function frame(width: number, height: number, title: string, caption: readonly string[], body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    ...body,
    ...caption.map((c, i) => `<text x="8" y="${height - 8 - (caption.length - 1 - i) * 14}" font-size="10" fill="#555555">${esc(c)}</text>`),
    '</svg>',
    '',
  ].join('\n');
}

/** A line chart (one polyline per series, legend on the right). */
export function lineChart(spec: LineChartSpec): string {
  const width = spec.width ?? 760, caption = spec.caption ?? [];
  const height = spec.height ?? 460 + caption.length * 14;
  const m = { left: 64, right: 200, top: 40, bottom: 48 + caption.length * 14 };
  const usable = (s: Series): Point[] => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!spec.xLog || x > 0) && (!spec.yLog || y > 0));
  const all = spec.series.flatMap(usable);
  const xa = axis(all.map((p) => p[0]), spec.xLog === true, spec.xDomain);
  const ya = axis(all.map((p) => p[1]), spec.yLog === true, spec.yDomain);
  const [x0, x1, y0, y1] = [m.left, width - m.right, height - m.bottom, m.top];
  const sx = scale(xa, x0, x1), sy = scale(ya, y0, y1);
  const body: string[] = [];
  for (const t of xa.ticks) {
    body.push(`<line x1="${px(sx(t))}" y1="${y0}" x2="${px(sx(t))}" y2="${y1}" stroke="#e5e5e5"/>`);
    body.push(`<text x="${px(sx(t))}" y="${y0 + 16}" text-anchor="middle">${esc(fmt(t))}</text>`);
  }
  for (const t of ya.ticks) {
    body.push(`<line x1="${x0}" y1="${px(sy(t))}" x2="${x1}" y2="${px(sy(t))}" stroke="#e5e5e5"/>`);
    body.push(`<text x="${x0 - 6}" y="${px(sy(t) + 4)}" text-anchor="end">${esc(fmt(t))}</text>`);
  }
  body.push(`<rect x="${x0}" y="${y1}" width="${x1 - x0}" height="${y0 - y1}" fill="none" stroke="#333333"/>`);
  body.push(`<text x="${(x0 + x1) / 2}" y="${y0 + 36}" text-anchor="middle">${esc(spec.xLabel)}</text>`);
  body.push(`<text transform="translate(16 ${(y0 + y1) / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}</text>`);
  for (const mark of spec.xMarks ?? []) {
    if (mark.x < xa.lo || mark.x > xa.hi) continue;
    body.push(`<line x1="${px(sx(mark.x))}" y1="${y0}" x2="${px(sx(mark.x))}" y2="${y1}" stroke="#888888" stroke-dasharray="4 3"/>`);
    body.push(`<text x="${px(sx(mark.x) + 3)}" y="${y1 + 12}" font-size="10" fill="#555555">${esc(mark.label)}</text>`);
  }
  spec.series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const pts = usable(s).map(([x, y]) => `${px(sx(x))},${px(sy(y))}`);
    if (pts.length > 1) body.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${pts.join(' ')}"/>`);
    else if (pts.length === 1) body.push(`<circle cx="${pts[0]!.split(',')[0]}" cy="${pts[0]!.split(',')[1]}" r="3" fill="${colour}"/>`);
    const ly = y1 + 10 + i * 20;
    body.push(`<line x1="${x1 + 12}" y1="${ly}" x2="${x1 + 36}" y2="${ly}" stroke="${colour}" stroke-width="3"/>`);
    body.push(`<text x="${x1 + 42}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  return frame(width, height, spec.title, caption, body);
}

/** A vertical bar chart with the value printed on each bar. */
export function barChart(spec: BarChartSpec): string {
  const width = spec.width ?? 760, caption = spec.caption ?? [];
  const height = spec.height ?? 420 + caption.length * 14;
  const m = { left: 64, right: 24, top: 40, bottom: 64 + caption.length * 14 };
  const ya = axis([0, ...spec.bars.map((b) => b.value)], false);
  const [x0, x1, y0, y1] = [m.left, width - m.right, height - m.bottom, m.top];
  const sy = scale(ya, y0, y1);
  const slot = (x1 - x0) / Math.max(1, spec.bars.length);
  const body: string[] = [];
  for (const t of ya.ticks) {
    body.push(`<line x1="${x0}" y1="${px(sy(t))}" x2="${x1}" y2="${px(sy(t))}" stroke="#e5e5e5"/>`);
    body.push(`<text x="${x0 - 6}" y="${px(sy(t) + 4)}" text-anchor="end">${esc(fmt(t))}</text>`);
  }
  spec.bars.forEach((b, i) => {
    const x = x0 + i * slot + slot * 0.15, w = slot * 0.7, top = sy(Math.max(0, b.value));
    body.push(`<rect x="${px(x)}" y="${px(top)}" width="${px(w)}" height="${px(y0 - top)}" fill="${COLOURS[i % COLOURS.length]!}"/>`);
    body.push(`<text x="${px(x + w / 2)}" y="${px(top - 4)}" text-anchor="middle">${esc(fmt(b.value) + (spec.unit ?? ''))}</text>`);
    body.push(`<text x="${px(x + w / 2)}" y="${y0 + 16}" text-anchor="middle">${esc(b.label)}</text>`);
  });
  body.push(`<line x1="${x0}" y1="${y0}" x2="${x1}" y2="${y0}" stroke="#333333"/>`);
  body.push(`<text transform="translate(16 ${(y0 + y1) / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}</text>`);
  return frame(width, height, spec.title, caption, body);
}

/** "Latency per stage": one bar per pipeline stage, e.g. `{ decode: 4.1, detect: 30.2, embed: 12 }`. */
export function stageLatencyChart(stagesMs: Record<string, number>, opts: { title?: string; caption?: readonly string[] } = {}): string {
  return barChart({
    title: opts.title ?? 'Latency per stage',
    yLabel: 'ms (median)',
    unit: ' ms',
    bars: Object.entries(stagesMs).map(([label, value]) => ({ label, value })),
    ...(opts.caption ? { caption: opts.caption } : {}),
  });
}

/** "Throughput vs gallery size": x = templates (log), y = e.g. queries/s; one series per variant. */
export function throughputChart(series: readonly Series[], opts: { title?: string; yLabel?: string; yLog?: boolean; caption?: readonly string[] } = {}): string {
  return lineChart({
    title: opts.title ?? 'Throughput vs gallery size',
    xLabel: 'gallery size (templates)',
    yLabel: opts.yLabel ?? 'queries/s',
    xLog: true,
    yLog: opts.yLog === true,
    series,
    ...(opts.caption ? { caption: opts.caption } : {}),
  });
}
