// node --conditions=source --import tsx bench/identify-run.ts [--quick] [--queries n] [--sizes 10000,1000000] [--budget n]
// Identify latency and recall at 10k, 100k and 1M templates (bench/identify.ts), planted at the
// LFW3D genuine similarities in bench/lfw3d-genuine.json; prints the result as JSON on stdout.
// --quick: 300 queries at 1M (exact search there takes ~90 ms a query), ~3 minutes in all.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchIdentify, identifyReport } from './identify.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, queries: { type: 'string' }, report: { type: 'boolean' }, sizes: { type: 'string' }, budget: { type: 'string' } }, strict: true });
const log = (t: string): void => void process.stderr.write(`${t}\n`);
const sample = JSON.parse(readFileSync(join(import.meta.dirname, 'lfw3d-genuine.json'), 'utf8')) as { model: string; similarities: number[] };
log(`identify: planting at ${sample.similarities.length} genuine similarities of ${sample.model}`);
const queries = Number(values.queries ?? 1000);
const result = await benchIdentify({
  sizes: values.sizes !== undefined ? values.sizes.split(',').map(Number) : [10_000, 100_000, 1_000_000],
  queries,
  ...(values.budget !== undefined ? { sketchBudget: Number(values.budget) } : {}),
  genuine: sample.similarities,
  queriesAt: values.quick === true ? { '1000000': Math.min(queries, 300) } : {},
  log,
});
if (values.report === true) log(identifyReport(result).join('\n'));
process.stdout.write(JSON.stringify(result, null, 2) + '\n');
