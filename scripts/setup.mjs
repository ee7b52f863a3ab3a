// The set-up step, run by `pnpm install` (root postinstall): compile the workspace, fetch and
// verify the models, and, where ../shared/data is absent, fetch the demo's sample files.
// Each step prints one line; a failure stops the install with the reason.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (process.env.FACEFLEET_SKIP_SETUP === '1') {
  console.log('facefleet setup: skipped (FACEFLEET_SKIP_SETUP=1)');
  process.exit(0);
}

function step(label, cmd, args) {
  const started = Date.now();
  const run = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (run.status !== 0) {
    console.error(`facefleet setup: ${label} failed${run.error ? ` (${run.error.message})` : ''}`);
    process.exit(run.status ?? 1);
  }
  console.log(`facefleet setup: ${label} done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

step('build (tsc -b)', process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b']);
const cli = join(root, 'packages', 'cli', 'bin', 'facefleet.js');
step('models fetch', process.execPath, [cli, 'models', 'fetch']);
const hasData = process.env.FACEFLEET_DATA_DIR || existsSync(join(root, '..', 'shared', 'data'));
if (!hasData) step('demo data fetch', process.execPath, [cli, 'data', 'fetch']);
