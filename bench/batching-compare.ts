/**
 * Batched vs one-exec-per-check status, side by side in one run, INSIDE the lab's bot
 * namespace: warm status time (median of interleaved runs) and SSH execs per node per status.
 * Usage: tsx bench/batching-compare.ts CONFIG [RUNS]
 */
import { loadConfig } from '../src/config/load-config.js';
import { createDiagnostics } from '../src/diagnostics/diagnose.js';
import { createProbes } from '../src/probes/create-probes.js';
import { SshPool } from '../src/probes/ssh-pool.js';

const configPath = process.argv[2];
const runs = Number(process.argv[3] ?? '15');
if (configPath === undefined) throw new Error('usage: batching-compare.ts CONFIG [RUNS]');
const base = loadConfig(configPath);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

const sides = [true, false].map((batchSsh) => {
  const config = { ...base, diagnostics: { batchSsh } };
  const probes = createProbes(config, { redisPassword: undefined });
  const d = createDiagnostics({ config, ...probes });
  return { batchSsh, probes, d, ms: [] as number[], execs: 0 };
});
for (const s of sides) {
  await s.d.primeRedisWindow();
  await s.d.run({ kind: 'status' });
}
const execsNow = (s: (typeof sides)[number]) =>
  s.probes.shell instanceof SshPool
    ? base.nodes.reduce((n, node) => n + (s.probes.shell as SshPool).execs(node.name), 0)
    : 0;
for (let i = 0; i < runs; i += 1) {
  for (const s of sides) {
    const before = execsNow(s);
    const t0 = performance.now();
    await s.d.run({ kind: 'status' });
    s.ms.push(performance.now() - t0);
    s.execs += execsNow(s) - before;
  }
}
const out = Object.fromEntries(
  sides.map((s) => [
    s.batchSsh ? 'batched' : 'perCheck',
    {
      warmStatusMedianMs: Math.round(median(s.ms)),
      sshExecsPerNodePerStatus: Number((s.execs / runs / base.nodes.length).toFixed(2)),
    },
  ]),
);
process.stdout.write(`${JSON.stringify(out)}\n`);
if (process.env.BATCH_PROFILE !== undefined) {
  for (const s of sides) {
    const r = await s.d.run({ kind: 'status' });
    const ssh = r.checks.filter((c) => c.node !== undefined).map((c) => `${c.id}=${c.durationMs}`);
    process.stdout.write(`${s.batchSsh ? 'batched' : 'perCheck'} ${r.durationMs} ms: ${ssh.join(' ')}\n`);
  }
}
for (const s of sides) await s.probes.close();
