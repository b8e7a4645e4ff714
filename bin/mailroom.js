#!/usr/bin/env node
// Runs the TypeScript sources directly: one way to run Mailroom, no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
