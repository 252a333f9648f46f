#!/usr/bin/env node
import { checkRuntime } from './runtime-check.js';

// Static imports are hoisted: the real main (and the native addons it loads) is imported only
// after the check, so a wrong Node gets a message and exit 2, not an ABI stack trace or a crash.
// Keep this file to syntax an old Node parses.
const refusal = checkRuntime();
if (refusal !== undefined) {
  process.stderr.write(refusal);
  process.exit(2);
}
await import('./main.js');
