import { FacefleetError, isInputError } from '@facefleet/protocol';
import { agentMain } from '@facefleet/agent';
import { hubMain } from '@facefleet/hub';
import { HelpRequest, UsageError } from './args.js';
import { dataCommand, demoCommand } from './commands/demo.js';
import { detectCommand } from './commands/detect.js';
import { evalCommand } from './commands/eval.js';
import { enrollCommand, forgetCommand, identifyCommand, subjectsCommand } from './commands/gallery.js';
import { modelsCommand } from './commands/models.js';
import { verifyCommand } from './commands/verify.js';
import { stdio, type Io } from './output.js';

const COMMANDS: Record<string, (argv: string[], io: Io) => number | Promise<number>> = {
  detect: detectCommand,
  verify: verifyCommand,
  enroll: enrollCommand,
  identify: identifyCommand,
  subjects: subjectsCommand,
  forget: forgetCommand,
  models: modelsCommand,
  eval: evalCommand,
  demo: demoCommand,
  data: dataCommand,
  agent: (argv, io) => agentMain(argv, io),
  hub: (argv, io) => hubMain(argv, io),
};

const HELP = `facefleet: face recognition on edge cameras

usage: facefleet <command> [options]

  detect <image> [--json]                         find faces, landmarks and quality
  verify <imageA> <imageB> [--json]               same person? (largest face of each)
  verify --pairs <list.csv> [--json]              verify every "imageA,imageB" line
  enroll --gallery <db> --subject <name> <image...>
  identify --gallery <db> <image> [--json]        name every face (open set)
  subjects --gallery <db> [--json]
  forget --gallery <db> --subject <name>          erase a subject and its templates
  models fetch [--mirror <dir>] | models list [--json]
  eval pairs --pairs <pairs.txt> --root <dir> [--json]
  agent --config <agent.yaml>                     run the edge agent daemon (also: agent enroll|import|events|status)
  hub [--port n] [--mqtt-port n] [--data-dir d]   run the hub (also: hub create-key|broker-config|migrate; hub --help)
      [--database-url u] [--database-schema s] [--mqtt-url u]
  demo                                            enrol the sample people and identify group photos
  data fetch                                      download the demo's sample files (where ../shared/data is absent)

Common options: --detector <id> --embedder <id> --threshold <cosine> --threads <n> --flip --tile
Exit codes: 0 success, 2 bad input or usage, 1 anything else.`;

/** Run one command; returns the exit code. Errors become one line on stderr. */
export async function main(argv: string[], io: Io = stdio): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(HELP);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    io.out('0.1.0');
    return 0;
  }
  const command = COMMANDS[name];
  try {
    if (!command) throw new UsageError(`unknown command "${name}" (try: facefleet --help)`);
    return await command(rest, io);
  } catch (err) {
    if (err instanceof HelpRequest) {
      io.out(`usage: ${err.usage}`);
      return 0;
    }
    return report(err, io);
  }
}

function report(err: unknown, io: Io): number {
  if (err instanceof FacefleetError) {
    // Usage errors may carry a usage line; everything else is exactly one line.
    const [first, ...more] = err.message.split('\n');
    io.err(`facefleet: ${first ?? ''}`);
    if (err instanceof UsageError && more.length > 0) io.err(more.join('\n'));
    return isInputError(err.code) ? 2 : 1;
  }
  const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
  io.err(`facefleet: unexpected error: ${message ?? ''}`);
  if (process.env.FACEFLEET_DEBUG === '1' && err instanceof Error) io.err(err.stack ?? '');
  return 1;
}
