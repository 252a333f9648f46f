/**
 * `npm run bench`: starts the lab (root only), runs the benchmarks inside the bot namespace,
 * prints the figures and writes them to bench/results/. Figures are ratios measured side by
 * side in one run: these machines are noisy.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { labAvailability } from '../test/support/lab/availability.js';
import { startLab } from '../test/support/lab/lab.js';
import { runBotCli } from '../test/support/run-bot-cli.js';

const availability = labAvailability();
if (!availability.ok) {
  process.stderr.write(`bench needs the lab: ${availability.reason}\n`);
  process.exit(2);
}

const results: Record<string, unknown> = { at: new Date().toISOString(), node: process.version };
const lab = await startLab();
try {
  const diag = await runBotCli(lab, [], {}, [
    'bench/diagnostics-bench.ts',
    lab.configPath,
    process.env.BENCH_RUNS ?? '100',
  ]);
  if (diag.code !== 0) throw new Error(`diagnostics bench failed: ${diag.stderr}`);
  results.diagnostics = JSON.parse(diag.stdout);
} finally {
  await lab.down();
}
const out = JSON.stringify(results, null, 2);
process.stdout.write(`${out}\n`);
const dir = join(import.meta.dirname, 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, `bench-${Date.now()}.json`), out);
