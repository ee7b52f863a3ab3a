// node --conditions=source --import tsx bench/accuracy-run.ts [--quick] [--threads n] [--report]
// The accuracy part of the benchmark alone (bench/accuracy.ts): writes bench/charts/roc.svg and
// prints the result, with the machine and the command, as JSON on stdout (--report: the
// markdown on stderr too). --quick: LFW3D folds 1-2 only.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { accuracyCharts, accuracyReport, benchAccuracy } from './accuracy.js';
import { machineCaption } from './charts.js';
import { machine } from './machine.js';

const here = import.meta.dirname;
const { values } = parseArgs({ options: { quick: { type: 'boolean' }, threads: { type: 'string' }, report: { type: 'boolean' } }, strict: true });
const dataDir = process.env.FACEFLEET_DATA_DIR ? resolve(process.env.FACEFLEET_DATA_DIR) : resolve(here, '..', '..', 'shared', 'data');
const log = (t: string): void => void process.stderr.write(`${t}\n`);
const command = `node --conditions=source --import tsx bench/accuracy-run.ts ${process.argv.slice(2).join(' ')}`.trim();
const m = machine();

const result = await benchAccuracy(dataDir, { quick: values.quick === true, threads: Number(values.threads ?? 0), log });
mkdirSync(join(here, 'charts'), { recursive: true });
for (const [file, svg] of Object.entries(accuracyCharts(result, machineCaption(m, command)))) writeFileSync(join(here, 'charts', file), svg);
if (values.report === true) log(accuracyReport(result).join('\n'));
process.stdout.write(JSON.stringify({ machine: m, date: new Date().toISOString(), command, accuracy: result }, null, 2) + '\n');
