#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by the set-up step (`pnpm install` runs `tsc -b`).
import { main } from '../dist/main.js';

process.exitCode = await main(process.argv.slice(2));
