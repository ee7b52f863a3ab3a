/** Counters, gauges and latency histograms, rendered in the Prometheus text format. */
export class Metrics {
  private readonly counters = new Map<string, { help: string; values: Map<string, number> }>();
  private readonly gauges = new Map<string, { help: string; read: () => number | Record<string, number> }>();
  private readonly histograms = new Map<string, { help: string; series: Map<string, { buckets: number[]; counts: number[]; sum: number; count: number }> }>();
  static readonly LATENCY_BUCKETS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

  inc(name: string, help: string, by = 1, labels: Record<string, string> = {}): void {
    const c = this.counters.get(name) ?? { help, values: new Map<string, number>() };
    const key = labelText(labels);
    c.values.set(key, (c.values.get(key) ?? 0) + by);
    this.counters.set(name, c);
  }

  get(name: string, labels: Record<string, string> = {}): number {
    return this.counters.get(name)?.values.get(labelText(labels)) ?? 0;
  }

  gauge(name: string, help: string, read: () => number | Record<string, number>): void {
    this.gauges.set(name, { help, read });
  }

  observe(name: string, help: string, ms: number, labels: Record<string, string> = {}): void {
    const h = this.histograms.get(name) ?? { help, series: new Map<string, { buckets: number[]; counts: number[]; sum: number; count: number }>() };
    const key = labelText(labels);
    const s = h.series.get(key) ?? { buckets: Metrics.LATENCY_BUCKETS_MS, counts: Metrics.LATENCY_BUCKETS_MS.map(() => 0), sum: 0, count: 0 };
    s.buckets.forEach((b, i) => {
      if (ms <= b) s.counts[i]!++;
    });
    s.sum += ms;
    s.count++;
    h.series.set(key, s);
    this.histograms.set(name, h);
  }

  render(): string {
    const out: string[] = [];
    for (const [name, c] of this.counters) {
      out.push(`# HELP ${name} ${c.help}`, `# TYPE ${name} counter`);
      for (const [labels, v] of c.values) out.push(`${name}${labels} ${v}`);
    }
    for (const [name, g] of this.gauges) {
      out.push(`# HELP ${name} ${g.help}`, `# TYPE ${name} gauge`);
      const v = g.read();
      if (typeof v === 'number') out.push(`${name} ${v}`);
      else for (const [k, x] of Object.entries(v)) out.push(`${name}${k} ${x}`);
    }
    for (const [name, h] of this.histograms) {
      out.push(`# HELP ${name} ${h.help}`, `# TYPE ${name} histogram`);
      for (const [labels, s] of h.series) {
        const inner = labels === '' ? '' : labels.slice(1, -1) + ',';
        s.buckets.forEach((b, i) => out.push(`${name}_bucket{${inner}le="${b}"} ${s.counts[i]}`));
        out.push(`${name}_bucket{${inner}le="+Inf"} ${s.count}`, `${name}_sum${labels} ${s.sum.toFixed(3)}`, `${name}_count${labels} ${s.count}`);
      }
    }
    return out.join('\n') + '\n';
  }
}

export function labelText(labels: Record<string, string>): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries.map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`).join(',')}}`;
}
