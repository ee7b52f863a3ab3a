#!/usr/bin/env node
// `facefleet-agent --config agent.yaml` is `facefleet agent --config agent.yaml`.
import { agentMain } from '../dist/index.js';

process.exitCode = await agentMain(process.argv.slice(2));
