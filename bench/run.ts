// pnpm bench [--part core ...] [--quick] [--threads n] [--report-only]: measures, then writes
// bench/results.json, bench/REPORT.md and the charts in bench/charts/ (--quick: the same in bench/quick/). Parts can run alone; the
// figures of parts not run are kept from the previous results.json (each says when it was measured).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchAgentGallery, type AgentGalleryBench } from './agent-gallery.js';
import { benchAgentRss, benchAgentVideos, type RssResult, type VideoResult } from './agent.js';
import { benchCore, type CoreResult } from './core.js';
import { benchScale, type ScaleBench } from './scale.js';
import { benchHub, type HubBench } from './hub.js';
import { benchRollout, type RolloutBench } from './rollout.js';
import { benchSwaps, type SwapBench } from './swaps.js';
import { machine } from './machine.js';
import { accuracyCharts, accuracyReport, benchAccuracy, type AccuracyResult } from './accuracy.js';
import { machineCaption, stageLatencyChart, throughputChart } from './charts.js';
import { benchIdentify, identifyReport, type IdentifyResult } from './identify.js';
import { benchPeerCompare, peerCompareReport, type PeerCompare } from './peer-compare.js';

const here = import.meta.dirname;
const { values } = parseArgs({ options: { part: { type: 'string', multiple: true }, quick: { type: 'boolean' }, threads: { type: 'string' }, 'report-only': { type: 'boolean' } }, strict: true });
const known = ['core', 'accuracy', 'peer', 'peer-speed', 'identify', 'agent', 'hub', 'scale', 'rollout', 'swaps', 'agent-gallery', 'agent-rss'];
const parts = values['report-only'] === true ? [] : (values.part ?? known);
for (const p of parts) if (!known.includes(p)) throw new Error(`unknown bench part "${p}" (known: ${known.join(', ')})`);
const dataDir = process.env.FACEFLEET_DATA_DIR ? resolve(process.env.FACEFLEET_DATA_DIR) : resolve(here, '..', '..', 'shared', 'data');
if (!existsSync(join(dataDir, 'edge_demo'))) throw new Error(`bench needs the sample data: ${dataDir} is absent (set FACEFLEET_DATA_DIR)`);
const log = (t: string): void => void process.stderr.write(`${t}\n`);

// A quick run is for a smoke test and its timing: it writes bench/quick/ (ignored by git) and never
// replaces the committed full-run figures.
const outDir = values.quick === true ? join(here, 'quick') : here;
mkdirSync(outDir, { recursive: true });
const resultsPath = join(outDir, 'results.json');
const previous = existsSync(resultsPath) ? (JSON.parse(readFileSync(resultsPath, 'utf8')) as Record<string, unknown>) : {};
const command = `pnpm bench ${process.argv.slice(2).join(' ')}`.trim();
const results: Record<string, unknown> = { ...previous, machine: machine(), date: new Date().toISOString(), command };
/** Each part records when and how it was measured: parts can be re-run alone. */
const measured = (): { date: string; command: string; commit: unknown } => ({ date: new Date().toISOString(), command, commit: (results.machine as Record<string, unknown>).commit });
const threads = Number(values.threads ?? 0);
const started = performance.now();
const charts: Record<string, string> = {};
const partSeconds: Record<string, number> = {};
/** Runs a part when asked for (the first of `names` asked names it), and logs and keeps its time. */
async function part(names: string | string[], body: () => Promise<void>): Promise<void> {
  const name = [names].flat().find((n) => parts.includes(n));
  if (name === undefined) return;
  const t0 = performance.now();
  await body();
  partSeconds[name] = Math.round((performance.now() - t0) / 1000);
  log(`bench: part ${name} took ${partSeconds[name]} s (${Math.round((performance.now() - started) / 1000)} s so far)`);
}
const caption = (): string[] => machineCaption(results.machine as Record<string, unknown>, command);

await part('core', async () => {
  const core = await benchCore(dataDir, { passes: values.quick ? 2 : 5, threads, log });
  results.core = { ...core, measured: measured() };
  results.floorRatio = core.floorRatio;
  const stages = Object.fromEntries(Object.entries(core.stagesMsPerImage).filter(([k]) => k !== 'total').map(([k, v]) => [k, v.median]));
  charts['latency-per-stage.svg'] = stageLatencyChart(stages, { title: `Latency per stage per image (${core.detector} + ${core.embedder}, demo photos)`, caption: caption() });
});

await part('accuracy', async () => {
  const accuracy = await benchAccuracy(dataDir, { quick: values.quick === true, threads, log });
  results.accuracy = { ...accuracy, measured: measured() };
  Object.assign(charts, accuracyCharts(accuracy, caption()));
});

await part(['peer', 'peer-speed'], async () => {
  // Same cores for both: all of them unless --threads says otherwise. `peer-speed` re-measures the
  // throughput on the demo photos only and keeps the LFW3D figures of the last `peer` run.
  const speedOnly = !parts.includes('peer');
  const fresh = await benchPeerCompare(dataDir, { threads: threads || availableParallelism(), quick: values.quick === true, speedOnly, log });
  const last = results.peerRun as PeerCompare | undefined;
  const peer: PeerCompare = speedOnly && last ? { ...last, ...fresh, peer: { ...last.peer, ...fresh.peer }, ...(fresh.ours ? { ours: { ...last.ours, ...fresh.ours } } : {}) } : fresh;
  if (speedOnly && last) {
    peer.lfw3dAccuracy = Math.max(peer.peer.lfw3d.accuracy, peer.peer.lfw3dCrop?.accuracy ?? 0);
    peer.oursLfw3dAccuracy = peer.ours?.lfw3d?.accuracy ?? null;
  }
  results.peerRun = { ...peer, measured: measured(), ...(speedOnly ? { lfw3dMeasured: (last as { measured?: unknown } | undefined)?.measured ?? null } : {}) };
  results.peer = { ...(results.peer as object), throughputRatio: peer.throughputRatio, fastProfileThroughputRatio: peer.ours?.fastProfile?.throughputRatio ?? null, lfw3dAccuracy: peer.lfw3dAccuracy, imagesPerSec: peer.peer.imagesPerSec, backend: peer.peer.backend, threads: peer.peer.threads, version: peer.peer.version, lfw3dPairs: peer.peer.lfw3d.pairs };
  results.ours = { ...(results.ours as object), lfw3dAccuracy: peer.oursLfw3dAccuracy, imagesPerSec: peer.ours?.best?.imagesPerSec ?? peer.ours?.imagesPerSec ?? null, setup: peer.ours?.best?.setup ?? null, lfw3dPairs: peer.peer.lfw3d.pairs };
});

await part('identify', async () => {
  const sample = JSON.parse(readFileSync(join(here, 'lfw3d-genuine.json'), 'utf8')) as { model: string; similarities: number[] };
  const identify = await benchIdentify({ sizes: [10_000, 100_000, 1_000_000], queries: 1000, genuine: sample.similarities, queriesAt: values.quick ? { '1000000': 100 } : {}, log });
  results.identify = { ...identify, measured: measured() };
});

await part('agent', async () => {
  results.agent = { ...(results.agent as object), videos: await benchAgentVideos(dataDir, { threads, maxFrames: values.quick ? 120 : 100_000, log }), videosMeasured: measured() };
});
const cli = join(here, '..', 'packages', 'cli', 'bin', 'facefleet.js');
await part('hub', async () => {
  const hub = await benchHub(cli, dataDir, {
    agents: 10,
    eventsPerAgent: values.quick ? 1000 : 5000,
    syncTemplates: values.quick ? [10_000] : [10_000, 100_000],
    syncAgents: values.quick ? [10] : [10, 100],
    log,
  });
  results.hub = { ...hub, measured: measured() };
});
await part('scale', async () => {
  const databaseUrl = process.env.FACEFLEET_BENCH_PG_URL ?? 'postgres://127.0.0.1:5432/test';
  const scale = await benchScale(cli, { databaseUrl, agents: 10, eventsPerAgent: values.quick ? 1000 : 5000, syncTemplates: values.quick ? [10_000] : [10_000, 100_000], syncAgents: 10, log });
  results.scale = { ...scale, measured: measured() };
});
await part('rollout', async () => {
  results.rollout = { ...(await benchRollout(cli, { agents: 100, waves: [10, 50, 100], log })), measured: measured() };
});
await part('swaps', async () => {
  results.swaps = { ...(await benchSwaps(cli, { swaps: values.quick ? 8 : 50, log })), measured: measured() };
});
await part('agent-gallery', async () => {
  results.agentGallery = { ...(await benchAgentGallery(dataDir, cli, { templates: 100_000, log })), measured: measured() };
});
await part('agent-rss', async () => {
  results.agent = { ...(results.agent as object), rss: await benchAgentRss(dataDir, cli, { minutes: values.quick ? 1 : 10, log }), rssMeasured: measured() };
});

const identifyNow = results.identify as IdentifyResult | undefined;
if (parts.includes('identify') && identifyNow) {
  const sizes = Object.keys(identifyNow).filter((k) => /^\d+$/.test(k)).map(Number).sort((a, b) => a - b);
  const series = (['exact', 'index'] as const).map((m) => ({
    name: m === 'exact' ? 'exact (FlatIndex)' : 'sketch index',
    points: sizes.flatMap((n) => {
      const f = identifyNow[String(n)]![m];
      return f ? [[n, Math.round(1000 / f.p50Ms)] as const] : [];
    }),
  }));
  charts['throughput-vs-gallery.svg'] = throughputChart(series, { title: 'Identify throughput vs gallery size (one thread, p50)', yLabel: 'queries/s', yLog: true, caption: caption() });
}
if (parts.length > 0) {
  results.seconds = { ...(results.seconds as object), [parts.join('+')]: Math.round((performance.now() - started) / 1000) };
  results.partSeconds = { ...(results.partSeconds as object), ...partSeconds };
}
mkdirSync(join(outDir, 'charts'), { recursive: true });
for (const [file, svg] of Object.entries(charts)) writeFileSync(join(outDir, 'charts', file), svg);
writeFileSync(resultsPath, JSON.stringify(results, null, 2) + '\n');
writeFileSync(join(outDir, 'REPORT.md'), report(results));
log(`bench: wrote ${resultsPath} and ${join(outDir, 'REPORT.md')} in ${Math.round((performance.now() - started) / 1000)} s`);

type M = { date: string; command: string; commit: unknown };

function via(x: { measured?: M | undefined }): string {
  return x.measured ? `_Measured ${x.measured.date} with \`${x.measured.command}\` at commit ${String(x.measured.commit)}._\n` : '';
}

function report(r: Record<string, unknown>): string {
  const m = r.machine as Record<string, unknown>;
  const lines = [
    '# facefleet benchmark report',
    '',
    `Machine: ${String(m.cpu)} (${String(m.cores)} cores, ${String(m.memoryGiB)} GiB), Node ${String(m.node)}, onnxruntime-node ${String(m.onnxruntime)}, sharp ${String(m.sharp)}, report written ${String(r.date)}.`,
    'Each section says when and with which command it was measured (parts can be re-run alone). Times are medians over passes, with min..max; the machine is a shared VM, so absolute times move between runs while ratios hold better.',
    '',
    ...headlines(r),
  ];
  const core = r.core as CoreResult | undefined;
  if (core) {
    lines.push(
      '## Recognition core on the demo photos',
      '',
      via(core as unknown as { measured?: M }),
      `${core.images} images (edge_demo group, expressions, misc), ${core.faces} faces, ${core.passes} passes after a warm-up; detector ${core.detector}, embedder ${core.embedder}, threads ${core.threads || 'all'}.`,
      '',
      '| stage | ms per image (median) | min | max |',
      '|---|---|---|---|',
      ...Object.entries(core.stagesMsPerImage).map(([k, s]) => `| ${k} | ${s.median} | ${s.min} | ${s.max} |`),
      '',
      `Pipeline per face: **${core.pipelineMsPerFace.median} ms** (${core.pipelineMsPerFace.min}..${core.pipelineMsPerFace.max}); raw model floor per face: ${core.floorMsPerFace.median} ms (${core.floorMsPerFace.min}..${core.floorMsPerFace.max}).`,
      `**floorRatio = ${core.floorRatio}**: pipeline time from file bytes to match result / the floor, which is the isolated session.run time on the same images in fresh sessions with the same threads (one detector call per image at the pipeline's input shape, ${core.isolated?.detectorMsPerImage ?? '-'} ms per image, plus one batch-1 embedder call per face, ${core.isolated?.embedderMsPerFace ?? '-'} ms). By stage: detect ${core.floorRatioByStage.detect} (detect stage / isolated detector runs), embed ${core.floorRatioByStage.embed}.`,
      ...(core.containedRatio !== undefined ? [`Against the session.run calls inside the pipeline itself (${core.containedMsPerFace.median} ms per face): ${core.containedRatio}.`] : []),
      '',
      '`detectorModel` and `embedderModel` are the session.run calls inside `detect` and `embed`; `decode` is sharp from file bytes to upright RGB; `align` includes quality.',
      '',
    );
  }
  if (core) lines.push('![Latency per stage](charts/latency-per-stage.svg)', '');
  const accuracy = r.accuracy as (AccuracyResult & { measured?: M }) | undefined;
  if (accuracy) lines.push(...accuracyReport(accuracy).flatMap((l, i) => (i === 1 ? ['', via(accuracy)] : [l])));
  const peer = r.peerRun as (PeerCompare & { measured?: M }) | undefined;
  if (peer) lines.push(...peerCompareReport(peer).flatMap((l, i) => (i === 1 ? ['', via(peer)] : [l])));
  const identify = r.identify as (IdentifyResult & { measured?: M }) | undefined;
  if (identify) {
    const { measured: when, ...sizes } = identify;
    lines.push(...identifyReport(sizes).flatMap((l, i) => (i === 1 ? ['', via({ measured: when })] : [l])), '![Identify throughput vs gallery size](charts/throughput-vs-gallery.svg)', '');
  }
  const agent = r.agent as { videos?: VideoResult[]; rss?: RssResult } | undefined;
  if (agent?.videos) {
    lines.push(
      '## Agent pipeline on the demo videos',
      '',
      via({ measured: (agent as { videosMeasured?: M }).videosMeasured }),
      'Every frame at native size through the agent\'s real Pipeline (decode, detect, gates, tracker, embed of the frames the tracker wants, match), fed as fast as it takes them.',
      '',
      '| video | size | frames | faces | frames/s | decode ms | detect ms | embed ms | match ms |',
      '|---|---|---|---|---|---|---|---|---|',
      ...agent.videos.map((v) => `| ${v.video} | ${v.width}x${v.height} | ${v.frames} | ${v.faces} | ${v.fps} | ${v.stageMsMean.decode} | ${v.stageMsMean.detect} | ${v.stageMsMean.embed} | ${v.stageMsMean.match} |`),
      '',
    );
  }
  if (agent?.rss) {
    const x = agent.rss;
    lines.push(
      '## Agent memory over a video loop',
      '',
      via({ measured: (agent as { rssMeasured?: M }).rssMeasured }),
      `The daemon as a process, Megamind.avi looped through a stream source at 10 frames/s for ${x.minutes} min, RSS sampled every 10 s: median ${x.rssMb.median} MB (${x.rssMb.min}..${x.rssMb.max}); growth after ${x.warmupMin} min of warm-up: **${x.growthMbPerMin} MB/min** (least-squares slope).`,
      '',
    );
  }
  const ag = r.agentGallery as (AgentGalleryBench & { measured?: M }) | undefined;
  if (ag) {
    lines.push(
      '## Agent memory with a large gallery',
      '',
      via(ag),
      `The agent daemon as a process with a folder source, RSS 2 s after it answered one photo (bbt3.jpg; the gallery index is built on the first search): empty gallery ${ag.emptyMb} MB; ${ag.templates} templates of ${ag.embedder} (random unit vectors, one subject each) **${ag.fullMb} MB**, so ${ag.bytesPerTemplate} bytes per template (a 512-d float32 row is 2048). First photo answered in ${ag.firstPhotoMs.empty} ms (empty) and ${ag.firstPhotoMs.full} ms (${ag.templates}, including reading the gallery into the index).`,
      '',
    );
  }
  const scale = r.scale as (ScaleBench & { measured?: M }) | undefined;
  if (scale) {
    lines.push(
      '## Scale-out: two hub replicas on PostgreSQL + Mosquitto',
      '',
      via(scale),
      `Two \`facefleet hub\` processes on one PostgreSQL (${scale.store}) and one Mosquitto (${scale.broker}) with the password and ACL files \`facefleet hub broker-config\` writes; simulated agents as in the hub part. Ingestion: ${scale.agents} agents x ${scale.eventsPerAgent} events, QoS 1, timed until every event was stored and acknowledged: **${scale.eventsPerSec} events/s** (${scale.stored} stored, no duplicates; ${scale.perReplica.join(' and ')} by each replica; ${scale.resent ?? 0} resent by the simulated agents once no acknowledgement had come for 5 s, as the agent's outbox resends).`,
      '',
      '| templates | agents | parts | all agents synced (ms) |',
      '|---|---|---|---|',
      ...scale.sync.map((x) => `| ${x.templates} | ${x.agents} | ${x.parts} | ${x.ms} |`),
      '',
    );
  }
  const hub = r.hub as HubBench | undefined;
  if (hub?.rss) {
    lines.push(
      '## Hub',
      '',
      via(hub as unknown as { measured?: M }),
      '`facefleet hub` runs as its own process on the embedded defaults (aedes + SQLite); simulated agents in the benchmark process talk to it over real MQTT and HTTP, each authenticated as its own device.',
      '',
      `Ingestion (QoS 1): ${hub.agents} agents x ${hub.eventsPerAgent} events, timed until every event was stored in SQLite and acknowledged: **${hub.eventsPerSec} events/s** (one run; ${hub.stored} stored, no duplicates).`,
      '',
      'Gallery sync: N new agents ask for a gallery of K random 512-d templates and follow the snapshot part by part (about 1 MiB each, the next asked for when the previous arrived, as the agent does), until every agent has every part. The first row of each size includes building the snapshot on the hub (build column); later rows are served from the parts it keeps.',
      '',
      '| templates | agents | parts | all agents synced (ms) | MB per agent | snapshot build (ms) |',
      '|---|---|---|---|---|---|',
      ...hub.sync.map((x) => `| ${x.templates} | ${x.agents} | ${x.parts} | ${x.ms} | ${(x.bytesPerAgent / 1e6).toFixed(1)} | ${x.buildMs ?? 'cached'} |`),
      '',
      ...(hub.agentApply
        ? [`On the device side, the real GalleryStore parses, decodes, stages and applies the ${hub.agentApply.templates}-template snapshot (${hub.agentApply.parts} parts) in ${hub.agentApply.ms} ms.`, '']
        : []),
      `Hub process RSS: ${hub.rss.startedMb} MB at start (models loaded, empty gallery); ${hub.rss.afterSyncMb} MB with ${hub.rss.templates} templates after serving the snapshots (it keeps the latest snapshot's parts for the next device); ${hub.rss.afterRecognizeMb} MB once a cloud recognition call has loaded the gallery's ${hub.rss.templates} templates for search.`,
      '',
    );
  }
  const rollout = r.rollout as (RolloutBench & { measured?: M }) | undefined;
  if (rollout) {
    lines.push(
      '## Model rollout',
      '',
      via(rollout),
      `${rollout.modelId} (${(rollout.modelBytes / 1e6).toFixed(1)} MB) rolled out to ${rollout.agents} simulated agents in waves of ${rollout.waves.join(' / ')}% through \`facefleet hub\` as its own process: each agent follows its retained config, downloads the file over HTTP with its own credentials, checks size, sha256 and signature, and reports each step over MQTT (it does not load the model). From \`POST /api/v1/rollouts\` to state ${rollout.state}: **${rollout.ms} ms** (one run; includes the hub's first self-test and signature of that model).`,
      '',
    );
  }
  const swaps = r.swaps as (SwapBench & { measured?: M }) | undefined;
  if (swaps) {
    lines.push(
      '## Agent memory over model swaps',
      '',
      via(swaps),
      `The agent daemon as a process, ${swaps.swaps} detector swaps (${swaps.models.join(' ↔ ')}) rolled out by the hub one after another: each a full update (sha256, signature, fresh session, self-test, switch, old session released). RSS after swap 1: ${swaps.rssMb[0]} MB, after the last: ${swaps.rssMb.at(-1)} MB; growth after the first five: **${swaps.growthMbPerSwap} MB per swap** (least-squares slope). Time per swap from \`POST /api/v1/rollouts\` to completed: median ${swaps.msPerSwap.median} ms (${swaps.msPerSwap.min}..${swaps.msPerSwap.max}).`,
      '',
    );
  }
  return lines.join('\n');
}

/** Issue 6's targets against this run's figures: met or missed, and by how much. */
function headlines(r: Record<string, unknown>): string[] {
  const get = (path: string): number | undefined => {
    let v: unknown = r;
    for (const k of path.split('.')) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
    return typeof v === 'number' ? v : undefined;
  };
  const row = (what: string, figure: number | undefined, target: string, met: ((v: number) => boolean) | undefined): string =>
    `| ${what} | ${figure ?? 'not measured'} | ${target} | ${figure === undefined || !met ? '-' : met(figure) ? 'met' : '**missed**'} |`;
  const ours = get('ours.lfw3dAccuracy');
  const peerAcc = get('peer.lfw3dAccuracy');
  const defaultLfw = (r.accuracy as AccuracyResult | undefined)?.lfw3d;
  return [
    '## Headlines and targets',
    '',
    '| figure | this run | target | |',
    '|---|---|---|---|',
    row('floorRatio (pipeline time per face / raw session.run time)', get('floorRatio'), '<= 1.3', (v) => v <= 1.3),
    row('peer.throughputRatio (ours / face-api, same images and cores)', get('peer.throughputRatio'), '>= 5', (v) => v >= 5),
    row('peer.fastProfileThroughputRatio (ours with mobilefacenet-128d-a / face-api)', get('peer.fastProfileThroughputRatio'), '>= 5', (v) => v >= 5),
    row('LFW3D accuracy of that profile (mobilefacenet-128d-a, accuracy part)', (defaultLfw as Record<string, { accuracy: number }> | undefined)?.['mobilefacenet-128d-a']?.accuracy, `>= face-api's ${peerAcc ?? '?'}`, peerAcc === undefined ? undefined : (v) => v >= peerAcc),
    row('ours.lfw3dAccuracy (same pairs as the peer)', ours, `>= face-api's ${peerAcc ?? '?'}`, peerAcc === undefined ? undefined : (v) => v >= peerAcc),
    row('peer.lfw3dAccuracy (face-api)', peerAcc, '-', undefined),
    row('identify 100k exact p99 ms (one core)', get('identify.100000.p99Ms'), '< 20', (v) => v < 20),
    row('identify 1M p99 ms (sketch index)', get('identify.1000000.p99Ms'), '< 10', (v) => v < 10),
    row('identify 1M recall@1', get('identify.1000000.recallAt1'), '>= 0.99', (v) => v >= 0.99),
    row('hub.eventsPerSec (embedded aedes + SQLite)', get('hub.eventsPerSec'), '>= 5000', (v) => v >= 5000),
    ...(defaultLfw ? Object.entries(defaultLfw).map(([id, x]) => row(`LFW3D 10-fold accuracy, ${id}`, x.accuracy, '-', undefined)) : []),
    '',
  ];
}
