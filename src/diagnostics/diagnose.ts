import type { LoadedConfig } from '../config/load-config.js';
import {
  type CheckId,
  type CheckResult,
  type CheckStatus,
  checkIds,
  couldNotJudge,
} from '../domain/check-result.js';
import { classify, type Incident } from '../domain/classify.js';
import { REPORT_SCHEMA_VERSION, type StatusReport } from '../domain/report.js';
import { incidentNumbers } from '../domain/runbook.js';
import { type IncidentRecovery, incidentRecovery, type RecoveryPolicy } from '../domain/windowed-evidence.js';
import type { HttpProbe, NodeShell, RedisProbe } from '../probes/ports.js';
import { BatchingShell } from './batching-shell.js';
import { buildCheckTasks, incidentChecks, readBudgets, validationChecks } from './check-catalogue.js';
import { deriveSsh, deriveVipOwner } from './derive-checks.js';
import { EvidenceHistoryLog } from './evidence-history.js';
import { type RedisSampleStore, RedisWindow } from './redis-window.js';
import { type CheckTask, runChecks } from './run-checks.js';

export interface DiagnosticsDeps {
  readonly config: LoadedConfig;
  readonly shell: NodeShell;
  readonly http: HttpProbe;
  readonly redis: RedisProbe;
  readonly now?: () => number;
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Cold-start interval between the two Redis samples (default 1000 ms). */
  readonly redisSampleIntervalMs?: number;
  /** Where the last Redis sample outlives this process (a one-shot CLI run starts its window there). */
  readonly redisSamples?: RedisSampleStore;
}

/** Which checks a run covers: all (status), the validation script's, or one target of `/okome check`. */
export type Scope =
  | { readonly kind: 'status' }
  | { readonly kind: 'validate' }
  | { readonly kind: 'check'; readonly target: string }
  /** Verification after an action: these check ids, on these nodes (global checks always). */
  | { readonly kind: 'checks'; readonly checks: readonly string[]; readonly nodes: readonly string[] };

export interface RunProgress {
  readonly done: number;
  readonly total: number;
  readonly result: CheckResult;
}

export interface Diagnostics {
  /** The number of checks a scope runs (for "running N checks…" before they start). */
  count(scope: Scope): number;
  run(scope: Scope, onProgress?: (p: RunProgress) => void): Promise<StatusReport>;
  /** What `/okome check` accepts: check ids, node names, incident numbers. */
  targets(): readonly string[];
  /**
   * Takes a Redis INFO sample as the start of the hit-ratio window, so the next status needs
   * no cold double sample, and a look at the current rate-limit window, so windows between
   * statuses are seen too; a served bot calls it at start and periodically. Errors are the caller's.
   */
  primeRedisWindow(): Promise<void>;
  /**
   * Whether the windowed symptoms an incident was seen with (in `seen`, at `since`) have
   * recovered over the samples this process took since: the answer for a resolve and a re-check.
   */
  recovery(incident: Incident, seen: readonly CheckResult[], since: number): IncidentRecovery;
}

/** Windowed evidence minimum: fewer lookups than this over a span are noise. */
const MIN_LOOKUPS = 20;

export function recoveryPolicy(config: LoadedConfig): RecoveryPolicy {
  return {
    recoveryMs: config.thresholds.recoverySec * 1000,
    redisHitRatio: config.thresholds.redisHitRatio,
    nginxHitRatio: config.thresholds.nginxHitRatio,
    minLookups: MIN_LOOKUPS,
  };
}

function sleepFor(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

export function createDiagnostics(deps: DiagnosticsDeps): Diagnostics {
  const { config } = deps;
  const now = deps.now ?? Date.now;
  const policy = recoveryPolicy(config);
  // Twice the span plus the sampler's period: the newest sample a span can be anchored on stays.
  const history = new EvidenceHistoryLog({ keepMs: 2 * policy.recoveryMs + 5 * 60_000, now });
  const redisWindow = new RedisWindow({
    maxAgeMs: config.redis.sample.maxAgeSec * 1000,
    intervalMs: deps.redisSampleIntervalMs ?? 1000,
    ...(deps.redisSamples === undefined ? {} : { kept: deps.redisSamples }),
    minLookups: MIN_LOOKUPS,
    now,
    sleep: deps.sleep ?? sleepFor,
    onSample: (s) => history.addCounters({ at: s.at, hits: s.keyspaceHits, misses: s.keyspaceMisses }),
  });
  const shell = config.diagnostics.batchSsh
    ? new BatchingShell(deps.shell, { maxOutputBytes: config.timeouts.maxOutputBytes })
    : deps.shell;
  const all = buildCheckTasks({ ...deps, shell, redisWindow, history, now });
  const nodeNames = new Set(config.nodes.map((n) => n.name));
  const vipNodes = config.nodes.filter((n) => n.holdsVip).map((n) => n.name);

  function select(scope: Scope): { tasks: CheckTask[]; derived: Set<CheckId>; nodes: Set<string> } {
    const everything = { tasks: all, derived: new Set<CheckId>(['ssh', 'vip-owner']), nodes: nodeNames };
    if (scope.kind === 'status') return everything;
    let wanted: (t: CheckTask) => boolean;
    let derived: CheckId[];
    let nodes = nodeNames;
    if (scope.kind === 'checks') {
      const ids = new Set(scope.checks);
      const onNodes = new Set(scope.nodes);
      if (ids.has('vip-owner')) ids.add('vip-addr');
      wanted = (t) => ids.has(t.check) && (t.node === undefined || onNodes.has(t.node));
      derived = (['ssh', 'vip-owner'] as const).filter((c) => ids.has(c));
      nodes = new Set([...nodeNames].filter((n) => onNodes.has(n)));
    } else if (scope.kind === 'validate') {
      wanted = (t) => validationChecks.has(t.check);
      derived = ['ssh', 'vip-owner'];
    } else if ((incidentNumbers as readonly string[]).includes(scope.target)) {
      const ids = new Set(incidentChecks[scope.target] ?? []);
      wanted = (t) => ids.has(t.check);
      derived = [...ids].filter((c) => c === 'ssh' || c === 'vip-owner');
      if (ids.has('vip-owner')) ids.add('vip-addr');
    } else if (nodeNames.has(scope.target)) {
      wanted = (t) => t.node === scope.target;
      derived = ['ssh'];
      nodes = new Set([scope.target]);
    } else {
      const id = scope.target as CheckId;
      wanted = (t) =>
        t.check === id ||
        (id === 'vip-owner' && t.check === 'vip-addr') ||
        (id === 'ssh' && t.check === 'chaos-flag');
      derived = id === 'ssh' || id === 'vip-owner' ? [id] : [];
    }
    return { tasks: all.filter(wanted), derived: new Set(derived), nodes };
  }

  return {
    targets: () => [...checkIds, ...nodeNames, ...incidentNumbers],
    primeRedisWindow: async () => {
      await redisWindow.prime(() => deps.redis.infoStats(config.timeouts.redisMs));
      await readBudgets({ config, redis: deps.redis, history, now }, config.timeouts.redisMs);
    },
    recovery: (incident, seen, since) =>
      incidentRecovery(incident, seen, { history: history.snapshot(), now: now(), since, policy }),
    count: (scope) => {
      const s = select(scope);
      return (
        s.tasks.length + (s.derived.has('vip-owner') ? 1 : 0) + (s.derived.has('ssh') ? s.nodes.size : 0)
      );
    },
    async run(scope, onProgress) {
      const started = now();
      const { tasks, derived, nodes } = select(scope);
      const total = tasks.length + (derived.has('vip-owner') ? 1 : 0) + (derived.has('ssh') ? nodes.size : 0);
      const results = await runChecks(tasks, {
        deadlineMs: config.timeouts.statusMs,
        now,
        onResult: (result, done) => onProgress?.({ done, total, result }),
      });
      const extra: CheckResult[] = [];
      if (derived.has('ssh')) {
        for (const node of nodes) {
          const r = deriveSsh(node, tasks, results);
          if (r !== undefined) extra.push(r);
        }
      }
      if (derived.has('vip-owner') && vipNodes.length > 0)
        extra.push(deriveVipOwner(vipNodes, config.vip.address, results));
      let done = results.length;
      for (const r of extra) onProgress?.({ done: ++done, total, result: r });
      // Derived checks first: the VIP holder and reachability frame everything else.
      const checks = [
        ...extra.filter((r) => r.check === 'vip-owner'),
        ...results,
        ...extra.filter((r) => r.check === 'ssh'),
      ];
      const classification = classify(checks, {
        nodes: config.nodes,
        actions: config.actions,
        vipAddress: config.vip.address,
        redisHitRatioThreshold: config.thresholds.redisHitRatio,
      });
      const counts: Record<CheckStatus, number> = {
        ok: 0,
        warn: 0,
        fail: 0,
        unreachable: 0,
        timeout: 0,
        unknown: 0,
      };
      for (const c of checks) counts[c.status] += 1;
      const scopeKind = scope.kind === 'checks' ? 'check' : scope.kind;
      return {
        schemaVersion: REPORT_SCHEMA_VERSION,
        kind: scopeKind,
        startedAt: new Date(started).toISOString(),
        durationMs: Math.round(now() - started),
        vip: { address: config.vip.address, state: classification.vip },
        healthy:
          classification.incidents.length === 0 &&
          counts.fail === 0 &&
          checks.every((c) => !couldNotJudge(c.status)),
        diagnosable: checks.some((c) => !couldNotJudge(c.status)),
        counts,
        ...(classification.isolation === undefined ? {} : { isolation: classification.isolation }),
        incidents: classification.incidents,
        checks,
      };
    },
  };
}
