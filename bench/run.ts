/**
 * `npm run bench`: builds, then measures in one run, side by side (these machines are noisy):
 * - diagnostics on the lab (root only): full status vs the slowest single probe, vs an
 *   operator's sequential ssh/curl/redis-cli script, cold and warm SSH pools, handshakes, RSS;
 * - Slack: ack latency of 1,000 `/okome help` and 100 `/okome status`, idle RSS;
 * - alerts: 10,000 Alertmanager alerts in 60 s across 20 groups;
 * - pg-driver: node-postgres vs `postgres` on the store's shapes of work (the driver choice);
 * - memory: heap snapshots of the served bot, idle, after 100 statuses and 2 × 1,100 commands;
 * - replicas: 1 vs 3 `okome serve` on one PostgreSQL (acks, statuses, a 60 s alert storm);
 *   BENCH_REPLICAS_ALERTS and BENCH_REPLICAS_SECONDS shrink its storm while iterating.
 * Prints the figures and writes them to bench/results/.
 * BENCH_ONLY=slack,alerts,diagnostics,pg-driver,memory,replicas
 * picks some; BENCH_RUNS sets the status runs before the RSS reading (default 100).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { labAvailability } from '../test/support/lab/availability.js';
import { startLab } from '../test/support/lab/lab.js';
import { namespaceOf, PI_NODES } from '../test/support/lab/topology.js';
import { runBotCli } from '../test/support/run-bot-cli.js';
import { alertsBench } from './alerts-bench.js';
import { memoryBench } from './memory-bench.js';
import { pgDriverBench } from './pg-driver-bench.js';
import { attachPiCgroups, type PiCgroups } from './pi-cost.js';
import { replicasBench } from './replicas-bench.js';
import { slackBench } from './slack-bench.js';
import { type DiagnosticsFigures, diagnosticsTable, type ReplicaFigures, replicasTable } from './table.js';

const only = new Set(
  (process.env.BENCH_ONLY ?? 'diagnostics,slack,alerts,pg-driver,memory,replicas')
    .split(',')
    .map((s) => s.trim()),
);
const results: Record<string, unknown> = { at: new Date().toISOString(), node: process.version };
const root = join(import.meta.dirname, '..');

execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });

if (only.has('diagnostics')) {
  const availability = labAvailability();
  if (!availability.ok) {
    results.diagnostics = { skipped: `needs the lab: ${availability.reason}` };
  } else {
    const lab = await startLab();
    let cgroups: PiCgroups | undefined;
    try {
      try {
        cgroups = attachPiCgroups(new Map(PI_NODES.map((n) => [n, namespaceOf(n)])));
      } catch (error) {
        process.stderr.write(`Pi-side cost not measured: ${(error as Error).message}\n`);
      }
      const diag = await runBotCli(
        lab,
        [lab.configPath, process.env.BENCH_RUNS ?? '100'],
        cgroups?.env ?? {},
        ['bench/diagnostics-bench.ts'],
      );
      if (diag.code !== 0)
        throw new Error(
          `diagnostics bench failed (exit ${diag.code ?? diag.signal}): ${diag.stderr}\n${diag.stdout.slice(-2000)}`,
        );
      results.diagnostics = JSON.parse(diag.stdout);
    } finally {
      cgroups?.release();
      await lab.down();
    }
  }
  process.stdout.write(`diagnostics: ${JSON.stringify(results.diagnostics)}\n`);
}
if (only.has('slack')) {
  results.slack = await slackBench();
  process.stdout.write(`slack: ${JSON.stringify(results.slack)}\n`);
}
if (only.has('alerts')) {
  results.alerts = await alertsBench();
  process.stdout.write(`alerts: ${JSON.stringify(results.alerts)}\n`);
}
if (only.has('memory')) {
  results.memory = await memoryBench();
  process.stdout.write(`memory: ${JSON.stringify(results.memory)}\n`);
}
if (only.has('pg-driver')) {
  results.pgDriver = await pgDriverBench();
  process.stdout.write(`pg-driver: ${JSON.stringify(results.pgDriver)}\n`);
}
if (only.has('replicas')) {
  const alerts = process.env.BENCH_REPLICAS_ALERTS;
  const seconds = process.env.BENCH_REPLICAS_SECONDS;
  results.replicas = await replicasBench({
    ...(alerts === undefined ? {} : { alerts: Number(alerts) }),
    ...(seconds === undefined ? {} : { seconds: Number(seconds) }),
  });
  process.stdout.write(`replicas: ${JSON.stringify(results.replicas)}\n`);
}

const out = JSON.stringify(results, null, 2);
process.stdout.write(`${out}\n`);
const dir = join(root, 'bench', 'results');
mkdirSync(dir, { recursive: true });
const stamp = Date.now();
writeFileSync(join(dir, `bench-${stamp}.json`), out);
const diagnostics = results.diagnostics as DiagnosticsFigures | { skipped: string } | undefined;
if (diagnostics !== undefined && !('skipped' in diagnostics)) {
  // The table docs/benchmarks.md shows, from this run.
  const table = diagnosticsTable(diagnostics);
  process.stdout.write(`\n${table}`);
  writeFileSync(join(dir, `bench-${stamp}.md`), table);
}
const replicas = results.replicas as { one: ReplicaFigures; three: ReplicaFigures } | undefined;
if (replicas !== undefined) {
  const table = replicasTable(replicas.one, replicas.three);
  process.stdout.write(`\n${table}`);
  writeFileSync(join(dir, `bench-${stamp}-replicas.md`), table);
}
