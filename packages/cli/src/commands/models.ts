import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fetchModels, loadManifest, modelsDir, projectRoot, sha256File } from '@facefleet/vision';
import { parse, UsageError } from '../args.js';
import type { Io } from '../output.js';

const USAGE = 'facefleet models fetch [--mirror <dir>] [--offline] | facefleet models list [--json] [--verify]';

/** The mirror to try first: --mirror, FACEFLEET_MODELS_MIRROR, or ../shared/models beside the repo. */
export function defaultMirror(): string | undefined {
  const env = process.env.FACEFLEET_MODELS_MIRROR;
  if (env !== undefined && env !== '') return resolve(env);
  const beside = join(projectRoot(), '..', 'shared', 'models');
  return existsSync(beside) ? beside : undefined;
}

export async function modelsCommand(argv: string[], io: Io): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === 'fetch') {
    const { values } = parse(rest, { mirror: { type: 'string' }, offline: { type: 'boolean' }, model: { type: 'string', multiple: true } }, USAGE);
    const mirror = values.mirror !== undefined ? resolve(values.mirror) : defaultMirror();
    const dir = modelsDir();
    let fetched = 0;
    const events = await fetchModels({
      dir,
      ...(mirror !== undefined ? { mirror } : {}),
      ...(values.model !== undefined ? { ids: values.model } : {}),
      offline: values.offline === true,
      onProgress: (e) => {
        if (e.kind === 'fetched') {
          fetched++;
          io.err(`models: ${e.id} <- ${e.from} (${(e.bytes / 1e6).toFixed(1)} MB, sha256 ok)`);
        }
      },
    });
    io.err(`models: ${events.length} verified in ${dir} (${fetched} fetched, ${events.length - fetched} already present)`);
    return 0;
  }
  if (verb === 'list') {
    const { values } = parse(rest, { json: { type: 'boolean' }, verify: { type: 'boolean' } }, USAGE);
    const manifest = loadManifest();
    const dir = modelsDir();
    const models = [];
    for (const m of manifest.models) {
      const path = join(dir, m.file);
      const present = existsSync(path);
      const verified = present && values.verify === true ? (await sha256File(path)) === m.sha256 : undefined;
      const isDefault = manifest.defaults.detector === m.id || manifest.defaults.embedder === m.id || manifest.defaults.liveness.includes(m.id);
      models.push({ id: m.id, kind: m.kind, family: m.family, file: m.file, sha256: m.sha256, licence: m.licence, default: isDefault, present, ...(verified !== undefined ? { verified } : {}), ...(m.threshold !== undefined ? { threshold: m.threshold } : {}), ...(m.embeddingSize !== undefined ? { embeddingSize: m.embeddingSize } : {}) });
    }
    if (values.json === true) io.out(JSON.stringify({ dir, defaults: manifest.defaults, models }));
    else for (const m of models) io.out(`${m.default ? '*' : ' '} ${m.id.padEnd(26)} ${m.kind.padEnd(9)} ${m.present ? 'present' : 'MISSING'}  ${m.licence}`);
    return 0;
  }
  throw new UsageError(`unknown models verb "${verb ?? ''}"\nusage: ${USAGE}`);
}
