/**
 * Diagnostics benchmark, run INSIDE the lab's bot namespace by bench/run.ts (it needs routes to
 * the lab). Prints one JSON object on stdout. Everything measured in one run, side by side.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { VipAddressMonitor } from '../src/alerts/vip-address-monitor.js';
import { vipProbeFromDiagnostics } from '../src/alerts/vip-probe.js';
import { VipWatcher } from '../src/alerts/vip-watcher.js';
import { loadConfig, nodeCommand } from '../src/config/load-config.js';
import { createDiagnostics } from '../src/diagnostics/diagnose.js';
import { RedisSampleFile } from '../src/diagnostics/redis-sample-file.js';
import { checkIds } from '../src/domain/check-result.js';
import { createProbes } from '../src/probes/create-probes.js';
import type { SshPool } from '../src/probes/ssh-pool.js';
import { PiCostMeter, type PiProcessCounts } from './pi-cost.js';

const run = promisify(execFile);
const configPath = process.argv[2];
const runs = Number(process.argv[3] ?? '100');
if (configPath === undefined) throw new Error('usage: diagnostics-bench.ts CONFIG [RUNS]');
const config = loadConfig(configPath);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};
const time = async (fn: () => Promise<unknown>) => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};

/** The operator's way: one ssh / curl / redis-cli process after another, the same commands. */
async function sequentialScript(): Promise<number> {
  return time(async () => {
    const vip = `http://${config.vip.address}:${config.vip.httpPort}`;
    for (const url of [
      `${config.orchestrator.baseUrl}${config.orchestrator.healthPath}`,
      `${vip}/`,
      `${vip}/api/planner`,
    ]) {
      await run('curl', ['-sS', '-o', '/dev/null', '-I', '--max-time', '3', url]).catch(() => undefined);
    }
    for (const cmd of [['ping'], ['info', 'stats'], ['--scan', '--pattern', 'okome:budget:*']]) {
      await run('redis-cli', ['-h', config.redis.host, '-p', String(config.redis.port), ...cmd]).catch(
        () => undefined,
      );
    }
    for (const node of config.nodes) {
      const commands = [
        ...node.services.map((s) => nodeCommand(node, 'serviceState', s)),
        node.command.vipOwnership,
        node.command.disk,
        node.command.memory,
        node.command.linkState,
        node.command.chaosFlag,
        node.command.firewallRules,
        ...(node.services.includes('nginx') ? [node.command.nginxConfig, node.command.accessLogTail] : []),
        ...(node.roles.includes('frontend') ? [node.command.prewarmTimer] : []),
        ...(node.services.includes('keepalived') ? [node.command.journalTail] : []),
      ];
      for (const command of commands) {
        await run('ssh', [
          '-F',
          'none',
          '-i',
          node.privateKeyPath,
          '-o',
          'IdentitiesOnly=yes',
          '-o',
          'BatchMode=yes',
          '-o',
          'StrictHostKeyChecking=no',
          '-o',
          'UserKnownHostsFile=/dev/null',
          '-o',
          'LogLevel=ERROR',
          '-p',
          String(node.ssh.port),
          `${node.ssh.user}@${node.address}`,
          command,
        ]).catch(() => undefined);
      }
    }
  });
}

/**
 * Batched (one exec per node) and one exec per check, side by side: warm statuses interleaved
 * so both see the same machine, and what each costs each Pi per status.
 */
async function batchingSideBySide(statuses: number) {
  const meter = PiCostMeter.fromEnv();
  const nodes = config.nodes.map((n) => n.name);
  const sides = [true, false].map((batchSsh) => {
    const c = { ...config, diagnostics: { batchSsh } };
    const probes = createProbes(c, { redisPassword: undefined });
    const pool = probes.shell as SshPool;
    return {
      name: batchSsh ? 'batched' : 'perCheck',
      probes,
      pool,
      d: createDiagnostics({ config: c, ...probes }),
      ms: [] as number[],
      cpu: Object.fromEntries(nodes.map((n) => [n, [] as number[]])),
      channels: 0,
      processes: undefined as Record<string, PiProcessCounts> | undefined,
    };
  });
  for (const s of sides) {
    await s.d.primeRedisWindow();
    await s.d.run({ kind: 'status' });
  }
  const channels = (s: (typeof sides)[number]) => nodes.reduce((n, node) => n + s.pool.execs(node), 0);
  for (let i = 0; i < statuses; i += 1) {
    // ABBA: whichever goes second also pays for the first one's tail (teardown on the nodes).
    for (const s of i % 2 === 0 ? sides : [...sides].reverse()) {
      const before = channels(s);
      const cpu0 = meter?.cpuMs();
      s.ms.push(await time(() => s.d.run({ kind: 'status' })));
      const cpu1 = meter?.cpuMs();
      for (const n of nodes) if (cpu0 && cpu1) s.cpu[n]?.push((cpu1[n] ?? 0) - (cpu0[n] ?? 0));
      s.channels += channels(s) - before;
    }
  }
  // Processes: counted over a run of statuses of one kind at a time (perf counts a span).
  const counted = 10;
  for (const s of sides) {
    s.processes = await meter
      ?.countProcesses(async () => {
        for (let i = 0; i < counted; i += 1) await s.d.run({ kind: 'status' });
      })
      .catch(() => undefined);
  }
  for (const s of sides) await s.probes.close();
  const [batched, perCheck] = sides.map((s) => ({
    warmStatusMedianMs: Math.round(median(s.ms)),
    sshChannelsPerNodePerStatus: Number((s.channels / statuses / nodes.length).toFixed(2)),
    perNodePerStatus: Object.fromEntries(
      nodes.map((n) => [
        n,
        {
          cpuMs: meter === undefined ? null : Number(median(s.cpu[n] ?? []).toFixed(1)),
          processesStarted: s.processes?.[n] === undefined ? null : s.processes[n].forks / counted,
          programsExecuted: s.processes?.[n] === undefined ? null : s.processes[n].execs / counted,
        },
      ]),
    ),
  }));
  return {
    statuses,
    batched,
    perCheck,
    batchedOverPerCheck: Number(
      ((batched?.warmStatusMedianMs ?? 0) / (perCheck?.warmStatusMedianMs ?? 1)).toFixed(2),
    ),
    piCost: meter === undefined ? 'not measured (needs bench/run.ts as root: cgroups and perf)' : 'measured',
  };
}

/**
 * What the VIP watcher costs each Pi per minute while nothing happens, side by side: polling every
 * 2 s (the previous way, and `stream: false`) vs the address stream with its 30 s fallback poll.
 * Each mode runs alone for `seconds` on its own pool, after its first poll (the baseline).
 */
async function watcherCost(seconds: number) {
  const meter = PiCostMeter.fromEnv();
  const nodes = config.nodes.filter((n) => n.holdsVip).map((n) => n.name);
  const timer = (fn: () => void, ms: number) => {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  };
  const modes: Record<string, unknown> = {};
  for (const stream of [false, true]) {
    const probes = createProbes(config, { redisPassword: undefined });
    const pool = probes.shell as SshPool;
    const d = createDiagnostics({ config, ...probes });
    let watcher: VipWatcher | undefined;
    const monitor = stream
      ? new VipAddressMonitor({
          shell: pool,
          nodes,
          address: config.vip.address,
          onChange: () => watcher?.nudge(),
          setTimer: timer,
        })
      : undefined;
    watcher = new VipWatcher({
      probe: vipProbeFromDiagnostics(d),
      onEvent: () => {},
      now: Date.now,
      setTimer: timer,
      intervalMs: 2000,
      idleIntervalMs: 30_000,
      quiet: () => monitor?.live() === true,
    });
    monitor?.start();
    await watcher.poll();
    watcher.start();
    if (monitor !== undefined) {
      const until = Date.now() + 10_000;
      while (!monitor.live() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    }
    const execs0 = nodes.map((n) => pool.execs(n));
    const cpu0 = meter?.cpuMs();
    const processes = await meter
      ?.countProcesses(() => new Promise((r) => setTimeout(r, seconds * 1000)))
      .catch(() => undefined);
    if (meter === undefined) await new Promise((r) => setTimeout(r, seconds * 1000));
    const cpu1 = meter?.cpuMs();
    const perMinute = 60 / seconds;
    modes[stream ? 'stream' : 'poll2s'] = Object.fromEntries(
      nodes.map((n, i) => [
        n,
        {
          sshCommands: Number(((pool.execs(n) - (execs0[i] ?? 0)) * perMinute).toFixed(1)),
          cpuMs: cpu0 && cpu1 ? Number((((cpu1[n] ?? 0) - (cpu0[n] ?? 0)) * perMinute).toFixed(1)) : null,
          processesStarted:
            processes?.[n] === undefined ? null : Number((processes[n].forks * perMinute).toFixed(1)),
        },
      ]),
    );
    watcher.stop();
    monitor?.stop();
    await probes.close();
  }
  return { seconds, perNodePerMinute: modes };
}

async function main(): Promise<void> {
  const operatorMs = median([await sequentialScript(), await sequentialScript(), await sequentialScript()]);

  // Cold SSH pool: new connections to every node. The served bot keeps its Redis hit-ratio
  // window primed (a sample a minute), so this measures that; a one-shot CLI run also waits
  // for a second Redis sample (coldUnprimed) unless an earlier run kept its last one (coldKeptSample).
  const coldMs: number[] = [];
  const coldUnprimedMs: number[] = [];
  const coldKeptSampleMs: number[] = [];
  const sampleDir = mkdtempSync(join(tmpdir(), 'okome-bench-sample-'));
  const samplePath = join(sampleDir, 'redis-sample.json');
  // The first-ever one-shot run: it waits, and keeps its sample for the runs below.
  {
    const first = createProbes(config, { redisPassword: undefined });
    const run = createDiagnostics({ config, ...first, redisSamples: new RedisSampleFile(samplePath) });
    await run.run({ kind: 'status' });
    await first.close();
  }
  for (let i = 0; i < 3; i += 1) {
    const probes = createProbes(config, { redisPassword: undefined });
    const d = createDiagnostics({ config, ...probes });
    await d.primeRedisWindow();
    coldMs.push(await time(() => d.run({ kind: 'status' })));
    await probes.close();
    const fresh = createProbes(config, { redisPassword: undefined });
    const once = createDiagnostics({ config, ...fresh });
    coldUnprimedMs.push(await time(() => once.run({ kind: 'status' })));
    await fresh.close();
    // A one-shot run after another one (or the served bot) kept its last Redis sample.
    const kept = createProbes(config, { redisPassword: undefined });
    const next = createDiagnostics({ config, ...kept, redisSamples: new RedisSampleFile(samplePath) });
    coldKeptSampleMs.push(await time(() => next.run({ kind: 'status' })));
    await kept.close();
  }
  rmSync(sampleDir, { recursive: true, force: true });

  const probes = createProbes(config, { redisPassword: undefined });
  const d = createDiagnostics({ config, ...probes });
  await d.run({ kind: 'status' });
  const handshakesBefore = probes.shell.handshakes();
  const warmMs: number[] = [];
  for (let i = 0; i < 10; i += 1) warmMs.push(await time(() => d.run({ kind: 'status' })));
  const warmHandshakes = probes.shell.handshakes() - handshakesBefore;

  // The slowest single probe, each check alone on the same warm connections.
  const single: Record<string, number> = {};
  for (const id of checkIds) {
    if (id === 'ssh' || id === 'vip-owner') continue;
    const xs: number[] = [];
    for (let i = 0; i < 3; i += 1) xs.push(await time(() => d.run({ kind: 'check', target: id })));
    single[id] = median(xs);
  }
  const [slowestId, slowestMs] = Object.entries(single).sort((a, b) => b[1] - a[1])[0] ?? [
    'none',
    Number.NaN,
  ];

  for (let i = 0; i < runs; i += 1) await d.run({ kind: 'status' });
  global.gc?.();
  const rssMb = process.memoryUsage().rss / 1024 / 1024;
  await probes.close();

  const batching = await batchingSideBySide(Number(process.env.BENCH_BATCHING_RUNS ?? '60'));
  const vipWatcher = await watcherCost(Number(process.env.BENCH_WATCH_SECONDS ?? '60'));

  const warm = median(warmMs);
  const cold = median(coldMs);
  process.stdout.write(
    `${JSON.stringify({
      checks: d.count({ kind: 'status' }),
      operatorSequentialMs: Math.round(operatorMs),
      coldStatusMs: Math.round(cold),
      coldStatusUnprimedMs: Math.round(median(coldUnprimedMs)),
      coldStatusKeptSampleMs: Math.round(median(coldKeptSampleMs)),
      warmStatusMs: Math.round(warm),
      slowestSingleProbe: { check: slowestId, ms: Math.round(slowestMs) },
      warmOverSlowestProbe: Number((warm / slowestMs).toFixed(2)),
      operatorOverCold: Number((operatorMs / cold).toFixed(1)),
      operatorOverWarm: Number((operatorMs / warm).toFixed(1)),
      warmHandshakesPer10Runs: warmHandshakes,
      statusRuns: runs,
      rssAfterRunsMb: Math.round(rssMb),
      batching,
      vipWatcher,
    })}\n`,
  );
}

await main();
