/**
 * The diagnostics figures of one bench run as the Markdown table docs/benchmarks.md shows.
 * Pure: takes the JSON diagnostics-bench.ts printed.
 */

interface PiCost {
  readonly cpuMs: number | null;
  readonly processesStarted: number | null;
  readonly programsExecuted: number | null;
}

interface Side {
  readonly warmStatusMedianMs: number;
  readonly sshChannelsPerNodePerStatus: number;
  readonly perNodePerStatus: Readonly<Record<string, PiCost>>;
}

export interface DiagnosticsFigures {
  readonly checks: number;
  readonly operatorSequentialMs: number;
  readonly coldStatusMs: number;
  readonly coldStatusUnprimedMs: number;
  readonly coldStatusKeptSampleMs?: number;
  readonly warmStatusMs: number;
  readonly slowestSingleProbe: { readonly check: string; readonly ms: number };
  readonly warmOverSlowestProbe: number;
  readonly operatorOverCold: number;
  readonly operatorOverWarm: number;
  readonly warmHandshakesPer10Runs: number;
  readonly statusRuns: number;
  readonly rssAfterRunsMb: number;
  readonly batching?: {
    readonly statuses: number;
    readonly batched: Side;
    readonly perCheck: Side;
    readonly batchedOverPerCheck: number;
  };
  readonly vipWatcher?: {
    readonly seconds: number;
    readonly perNodePerMinute: Readonly<
      Record<'poll2s' | 'stream', Readonly<Record<string, WatcherCost>> | undefined>
    >;
  };
}

interface WatcherCost {
  readonly sshCommands: number;
  readonly cpuMs: number | null;
  readonly processesStarted: number | null;
}

const n = (x: number | null | undefined, digits = 1): string =>
  x === null || x === undefined ? '—' : x.toLocaleString('en-GB', { maximumFractionDigits: digits });

export function diagnosticsTable(d: DiagnosticsFigures): string {
  const rows: [string, string][] = [
    ["operator's sequential ssh/curl/redis-cli script (the peer)", `${n(d.operatorSequentialMs)} ms`],
    ['cold status (new SSH pool, window primed)', `${n(d.coldStatusMs)} ms (${n(d.operatorOverCold)}×)`],
    ['warm status', `${n(d.warmStatusMs)} ms (${n(d.operatorOverWarm)}×)`],
    [
      `warm status ÷ slowest single unbatched probe alone (${n(d.slowestSingleProbe.ms)} ms, \`${d.slowestSingleProbe.check}\`)`,
      `${n(d.warmOverSlowestProbe, 2)}×`,
    ],
    ['one-shot status, first-ever run (waits for a second Redis sample)', `${n(d.coldStatusUnprimedMs)} ms`],
    [
      'one-shot status, Redis sample kept by an earlier run',
      d.coldStatusKeptSampleMs === undefined ? '—' : `${n(d.coldStatusKeptSampleMs)} ms`,
    ],
    ['SSH handshakes in 10 warm statuses', n(d.warmHandshakesPer10Runs)],
    [`RSS after ${n(d.statusRuns)} statuses (tsx process)`, `${n(d.rssAfterRunsMb)} MB`],
  ];
  const b = d.batching;
  if (b !== undefined) {
    rows.push([
      `warm status, batched vs one exec per check (median of ${b.statuses} each, ABBA)`,
      `${n(b.batched.warmStatusMedianMs)} ms vs ${n(b.perCheck.warmStatusMedianMs)} ms (${n(b.batchedOverPerCheck, 2)}×)`,
    ]);
    rows.push([
      'SSH channels per node per status, batched vs per check',
      `${n(b.batched.sshChannelsPerNodePerStatus)} vs ${n(b.perCheck.sshChannelsPerNodePerStatus)}`,
    ]);
    for (const node of Object.keys(b.batched.perNodePerStatus)) {
      const on = b.batched.perNodePerStatus[node];
      const off = b.perCheck.perNodePerStatus[node];
      rows.push([
        `${node} per status, batched vs per check: CPU ms / processes started / programs run`,
        `${n(on?.cpuMs)} / ${n(on?.processesStarted)} / ${n(on?.programsExecuted)} vs ${n(off?.cpuMs)} / ${n(off?.processesStarted)} / ${n(off?.programsExecuted)}`,
      ]);
    }
  }
  const w = d.vipWatcher;
  if (w !== undefined) {
    const poll = w.perNodePerMinute.poll2s ?? {};
    const stream = w.perNodePerMinute.stream ?? {};
    for (const node of Object.keys(stream)) {
      const a = poll[node];
      const s = stream[node];
      rows.push([
        `VIP watcher, ${node} per idle minute, polling every 2 s vs address stream (30 s fallback): SSH commands / CPU ms / processes started (${n(w.seconds)} s each)`,
        `${n(a?.sshCommands)} / ${n(a?.cpuMs)} / ${n(a?.processesStarted)} vs ${n(s?.sshCommands)} / ${n(s?.cpuMs)} / ${n(s?.processesStarted)}`,
      ]);
    }
  }
  return ['| figure | this run |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`), ''].join('\n');
}

interface Percentiles {
  readonly p50: number;
  readonly p99: number;
}

/** One setting of bench/replicas-bench.ts (1 or 3 replicas). */
export interface ReplicaFigures {
  readonly replicas: number;
  readonly readyMs: number;
  readonly helpAckMs: Percentiles & { readonly runs: number };
  readonly statusAckMs: Percentiles & { readonly runs: number };
  readonly statusReportMs: Percentiles & { readonly runs: number };
  readonly alerts: {
    readonly alerts: number;
    readonly sentInSeconds: number;
    readonly statuses: Readonly<Record<string, number>>;
    readonly webhookLatencyMs: Percentiles & { readonly max: number };
    readonly lost: number;
    readonly storedTwice: number;
    readonly incidents: number;
    readonly slackPosts: number;
    readonly duplicateDeliveries: number;
    readonly repeatedInThread: number;
    readonly postsPerChannelMaxIn30s: number;
    readonly postsPerChannelMaxAverageOver30sPerSecond: number;
    readonly postsPerChannelMaxInAnySecond: number;
    readonly drainedSecondsAfterLastAlert: number;
    readonly rssPeakMbPerReplica: number;
  };
}

/** 1 vs 3 replicas as the Markdown table docs/benchmarks.md shows. Pure. */
export function replicasTable(one: ReplicaFigures, three: ReplicaFigures): string {
  const p = (x: Percentiles) => `${n(x.p50)} / ${n(x.p99)} ms`;
  const answers = (s: Readonly<Record<string, number>>) =>
    Object.entries(s)
      .map(([code, count]) => `${n(count)}× ${code === '0' ? 'no answer' : code}`)
      .join(', ');
  const rows: [string, (f: ReplicaFigures) => string][] = [
    ['all replicas ready (/readyz 200)', (f) => `${n(f.readyMs)} ms`],
    [`\`/okome help\` ack p50 / p99 (${one.helpAckMs.runs})`, (f) => p(f.helpAckMs)],
    [`\`/okome status\` ack p50 / p99 (${one.statusAckMs.runs}, 1.5 s apart)`, (f) => p(f.statusAckMs)],
    ['`/okome status` until its report is in Slack, p50 / p99', (f) => p(f.statusReportMs)],
    [
      `alert storm: ${n(one.alerts.alerts)} alerts in 20 groups, sent in`,
      (f) => `${n(f.alerts.sentInSeconds)} s (${answers(f.alerts.statuses)})`,
    ],
    [
      'webhook latency p50 / p99 / max',
      (f) => `${p(f.alerts.webhookLatencyMs)} / ${n(f.alerts.webhookLatencyMs.max)} ms`,
    ],
    ['alerts lost / stored twice', (f) => `${n(f.alerts.lost)} / ${n(f.alerts.storedTwice)}`],
    [
      'incidents / Slack posts / deliveries doubled / same text again in a thread',
      (f) =>
        `${n(f.alerts.incidents)} / ${n(f.alerts.slackPosts)} / ${n(f.alerts.duplicateDeliveries)} / ${n(f.alerts.repeatedInThread)}`,
    ],
    [
      'posts per channel: most in any 30 s (per second) / in any 1 s',
      (f) =>
        `${n(f.alerts.postsPerChannelMaxIn30s)} (${n(f.alerts.postsPerChannelMaxAverageOver30sPerSecond, 2)}/s) / ${n(f.alerts.postsPerChannelMaxInAnySecond)}`,
    ],
    ['outbox drained after the last alert', (f) => `${n(f.alerts.drainedSecondsAfterLastAlert)} s`],
    ['RSS peak (largest replica)', (f) => `${n(f.alerts.rssPeakMbPerReplica)} MB`],
  ];
  return [
    '| figure | 1 replica | 3 replicas |',
    '|---|---|---|',
    ...rows.map(([k, v]) => `| ${k} | ${v(one)} | ${v(three)} |`),
    '',
  ].join('\n');
}
