import type { LoadedConfig, ResolvedNode } from '../config/load-config.js';
import { nodeCommand } from '../config/load-config.js';
import type { CommandPurpose } from '../config/schema.js';
import {
  type CheckId,
  type CheckStatus,
  type Facts,
  type FactsOf,
  resultId,
} from '../domain/check-result.js';
import * as parse from '../domain/parse/index.js';
import { incidentNumbers, runbook } from '../domain/runbook.js';
import type { ExecResult, HttpProbe, HttpResult, NodeShell, RedisProbe } from '../probes/ports.js';
import type { EvidenceHistoryLog } from './evidence-history.js';
import type { RedisWindow } from './redis-window.js';
import type { CheckOutcome, CheckTask } from './run-checks.js';

/**
 * The runbook's checks (incidents 1–7, 5b and the validation script) as tasks over the ports.
 * Each task reads one thing and judges it; derived checks (ssh reachability, VIP ownership)
 * are computed from these in derive-checks.ts.
 */

export interface CatalogueDeps {
  readonly config: LoadedConfig;
  readonly shell: NodeShell;
  readonly http: HttpProbe;
  readonly redis: RedisProbe;
  readonly redisWindow: RedisWindow;
  /** Windowed evidence (budget windows, nginx log-tail ratios) is recorded here as it is seen. */
  readonly history: EvidenceHistoryLog;
  readonly now: () => number;
}

/**
 * The current rate-limit window's counters, judged against the limit and recorded in the
 * history: a status and the periodic sampler both read them, so windows between statuses are seen.
 */
export async function readBudgets(
  deps: Pick<CatalogueDeps, 'config' | 'redis' | 'history' | 'now'>,
  timeoutMs: number,
): Promise<FactsOf<'redis-budget'>> {
  const { limit, windowSec } = deps.config.redis.rateLimit;
  const at = deps.now();
  const window = parse.currentWindow(at, windowSec);
  const [budgetKeys, rateLimitKeys, counters] = await Promise.all([
    deps.redis.countKeys('okome:budget:*', timeoutMs),
    deps.redis.countKeys('okome:budget:rl:*', timeoutMs),
    deps.redis.rateLimitCounters(window, timeoutMs),
  ]);
  const runaway = counters.filter((c) => c.count >= limit).map((c) => ({ agent: c.agent, count: c.count }));
  runaway.sort((a, b) => b.count - a.count);
  deps.history.addBudget({ at, window, atLimit: runaway, limit });
  return { kind: 'redis-budget', budgetKeys, rateLimitKeys, limit, runaway };
}

/** The checks of the runbook's validation script (`okome validate`). */
export const validationChecks: ReadonlySet<CheckId> = new Set([
  'ssh',
  'service',
  'memory',
  'disk',
  'network',
  'vip-http',
  'node-http',
  'vip-addr',
  'vip-owner',
]);

/** Checks that show each incident (`/okome check <incident-number>`). */
/** The checks that look at each runbook incident (`/okome check <n>`): the runbook's table. */
export const incidentChecks: Readonly<Record<string, readonly CheckId[]>> = Object.fromEntries(
  incidentNumbers.map((n) => [n, runbook[n].checks]),
);

const MIN_LOG_LOOKUPS = 20;

const HEADERS = ['x-cache-status', 'x-okome-node', 'x-upstream-status', 'x-request-id', 'x-okome-canary'];

/** The runbook's wording of each streaming directive. */
function directiveText(d: parse.StreamingDirective): string {
  return d.endsWith('_timeout') ? `${d} 600s` : `${d} off`;
}

function httpFacts(r: HttpResult): Facts {
  return {
    kind: 'http',
    status: r.status,
    latencyMs: Math.round(r.latencyMs),
    cacheStatus: r.headers['x-cache-status'],
    servedBy: r.headers['x-okome-node'],
    upstreamStatus: r.headers['x-upstream-status'],
  };
}

function httpLine(r: HttpResult): string {
  const parts = [`${r.status} in ${Math.round(r.latencyMs)} ms`];
  if (r.headers['x-cache-status'] !== undefined) parts.push(`X-Cache-Status ${r.headers['x-cache-status']}`);
  if (r.headers['x-okome-node'] !== undefined) parts.push(`X-OKOME-Node ${r.headers['x-okome-node']}`);
  return parts.join(', ');
}

function httpEvidence(method: string, url: string, r: HttpResult): string {
  const lines = [`${method} ${url}`, `HTTP ${r.status} (${Math.round(r.latencyMs)} ms)`];
  for (const h of HEADERS) if (r.headers[h] !== undefined) lines.push(`${h}: ${r.headers[h]}`);
  return lines.join('\n');
}

function execEvidence(command: string, r: ExecResult): string {
  const out = [r.stdout.trimEnd(), r.stderr.trimEnd()].filter((s) => s !== '').join('\n');
  return `$ ${command}\n${out}${out === '' ? '' : '\n'}(exit ${r.exitCode ?? r.signal ?? '?'}${r.truncated ? ', output truncated' : ''})`;
}

export function buildCheckTasks(deps: CatalogueDeps): CheckTask[] {
  const { config, http, redis } = deps;
  const t = config.timeouts;
  const th = config.thresholds;
  const tasks: CheckTask[] = [];
  const vipBase = `http://${config.vip.address}:${config.vip.httpPort}`;

  const httpTask = (
    check: CheckId,
    title: string,
    url: string,
    judge: (r: HttpResult) => CheckStatus,
    options: { node?: string; headers?: Record<string, string>; method?: 'HEAD' | 'GET' } = {},
  ): CheckTask => ({
    id: resultId(check, options.node),
    check,
    title,
    node: options.node,
    via: 'http',
    timeoutMs: t.httpMs,
    async run(_signal, timeoutMs) {
      const method = options.method ?? 'HEAD';
      const r = await http.request({
        url,
        method,
        timeoutMs,
        maxBodyBytes: 0,
        ...(options.headers ? { headers: options.headers } : {}),
      });
      return {
        status: judge(r),
        summary: httpLine(r),
        facts: httpFacts(r),
        evidence: httpEvidence(method, url, r),
      };
    },
  });

  // The orchestrator first: golden rule 1 judges it before any cache node.
  tasks.push(
    httpTask(
      'orch-health',
      'Orchestrator /health',
      new URL(config.orchestrator.healthPath, config.orchestrator.baseUrl).href,
      (r) => (r.status >= 200 && r.status < 300 ? 'ok' : 'fail'),
      { method: 'GET' },
    ),
    httpTask('vip-http', 'VIP answers (UI)', `${vipBase}/`, (r) =>
      r.status >= 500 ? 'fail' : r.status >= 400 ? 'fail' : r.latencyMs > th.latencyMs ? 'warn' : 'ok',
    ),
    httpTask('vip-api', 'API through the VIP', `${vipBase}${config.orchestrator.apiProbePath}`, (r) =>
      r.status >= 500 ? 'fail' : 'ok',
    ),
    httpTask('vip-canary', 'Canary debug bypass', `${vipBase}/`, (r) => (r.status < 400 ? 'ok' : 'warn'), {
      headers: { 'X-OKOME-Canary': 'debug' },
    }),
  );

  const redisTask = (check: CheckId, title: string, run: CheckTask['run']): CheckTask => ({
    id: check,
    check,
    title,
    node: undefined,
    via: 'redis',
    timeoutMs: check === 'redis-hit-ratio' ? t.redisMs * 2 + 1000 : t.redisMs,
    run,
  });
  tasks.push(
    redisTask('redis-ping', 'Redis PING', async (_s, ms) => {
      const reply = await redis.ping(ms);
      return {
        status: reply === 'PONG' ? 'ok' : 'fail',
        summary: `PING → ${reply}`,
        facts: { kind: 'redis-ping', reply },
      };
    }),
    redisTask('redis-hit-ratio', 'Redis hit ratio', async (signal) => {
      const facts = await deps.redisWindow.ratio(() => redis.infoStats(t.redisMs), signal);
      const pct = facts.ratio === null ? 'n/a' : `${(facts.ratio * 100).toFixed(1)} %`;
      const low = facts.ratio !== null && facts.ratio < th.redisHitRatio;
      return {
        status: low ? 'warn' : 'ok',
        summary: `${pct} over ${windowWords(facts)} (${facts.hits} hits, ${facts.misses} misses)`,
        facts,
      };
    }),
    redisTask('redis-budget', 'Agent budgets', async (_s, ms) => {
      const facts = await readBudgets(deps, ms);
      const { budgetKeys, rateLimitKeys, limit, runaway } = facts;
      return {
        status: runaway.length > 0 ? 'warn' : 'ok',
        summary: `${budgetKeys} budget keys, ${rateLimitKeys} rate-limit keys; ${
          runaway.length === 0
            ? 'no runaway agent'
            : `runaway: ${runaway.map((a) => `${a.agent} ${a.count}/${limit}`).join(', ')}`
        }`,
        facts,
      };
    }),
  );

  for (const node of config.nodes) tasks.push(...nodeTasks(node, deps, httpTask));
  return tasks;
}

type HttpTaskFactory = (
  check: CheckId,
  title: string,
  url: string,
  judge: (r: HttpResult) => CheckStatus,
  options?: { node?: string },
) => CheckTask;

function nodeTasks(node: ResolvedNode, deps: CatalogueDeps, httpTask: HttpTaskFactory): CheckTask[] {
  const { config, shell } = deps;
  const th = config.thresholds;
  const runsNginx = node.services.includes('nginx');

  const sshTask = (
    check: CheckId,
    title: string,
    purpose: CommandPurpose,
    judge: (r: ExecResult) => CheckOutcome,
    service?: string,
  ): CheckTask => {
    const command = nodeCommand(node, purpose, service);
    return {
      id: resultId(check, node.name, service),
      check,
      title: `${title} on ${node.name}`,
      node: node.name,
      via: 'ssh',
      timeoutMs: config.timeouts.checkMs,
      async run(signal, timeoutMs) {
        const r = await shell.exec(node.name, command, { timeoutMs, signal });
        const outcome = judge(r);
        return { ...outcome, evidence: outcome.evidence ?? execEvidence(command, r) };
      },
    };
  };

  const tasks: CheckTask[] = [];
  if (runsNginx) {
    tasks.push(
      httpTask(
        'node-http',
        `${node.name} answers HTTP`,
        `http://${node.address}:${node.httpPort}/`,
        (r) => (r.status >= 500 ? 'fail' : 'ok'),
        { node: node.name },
      ),
    );
  }
  for (const service of node.services) {
    tasks.push(
      sshTask(
        'service',
        `${service} active`,
        'serviceState',
        (r) => {
          const s = parse.parseServiceState(r.stdout, r.exitCode);
          if (s.kind === 'unknown') return { status: 'unknown', summary: s.reason };
          return {
            status: s.kind === 'active' ? 'ok' : 'fail',
            summary: `${service} is ${s.kind}`,
            facts: { kind: 'service', service, state: s.kind },
          };
        },
        service,
      ),
    );
  }
  if (node.holdsVip) {
    tasks.push(
      sshTask('vip-addr', 'VIP address', 'vipOwnership', (r) => {
        const p = parse.parseIpAddr(r.stdout);
        if (p.kind === 'unknown') return { status: 'unknown', summary: p.reason };
        const holds = parse.holdsAddress(p, config.vip.address);
        return {
          status: 'ok',
          summary: holds
            ? `holds the VIP ${config.vip.address}`
            : `does not hold the VIP ${config.vip.address}`,
          facts: { kind: 'vip-addr', holds },
        };
      }),
    );
  }
  tasks.push(
    sshTask('disk', 'Disk', 'disk', (r) => {
      const p = parse.parseDf(r.stdout);
      if (p.kind === 'unknown') return { status: 'unknown', summary: p.reason };
      const root = parse.mountAt(p, '/') ?? p.mounts[0];
      if (root === undefined || root.usePercent === null)
        return { status: 'unknown', summary: 'df printed no usable mount' };
      return {
        status: root.usePercent >= th.diskPercent ? 'warn' : 'ok',
        summary: `${root.mount} ${root.usePercent} % full${root.usePercent >= th.diskPercent ? ` (SD cards degrade above ${th.diskPercent} %)` : ''}`,
        facts: { kind: 'disk', usePercent: root.usePercent, mount: root.mount },
      };
    }),
    sshTask('memory', 'Memory', 'memory', (r) => {
      const p = parse.parseMeminfo(r.stdout);
      if (p.kind === 'unknown') return { status: 'unknown', summary: p.reason };
      const used = Math.round(p.usedPercent);
      return {
        status: used >= th.memoryPercent ? 'warn' : 'ok',
        summary: `${used} % used of ${Math.round(p.totalKb / 1024)} MiB${p.estimated ? ' (estimated)' : ''}`,
        facts: { kind: 'memory', usedPercent: used },
        evidence: `MemTotal ${p.totalKb} kB, MemAvailable ${p.availableKb} kB`,
      };
    }),
    sshTask('network', 'Network links', 'linkState', (r) => {
      const p = parse.parseIpLink(r.stdout);
      if (p.kind === 'unknown') return { status: 'unknown', summary: p.reason };
      const down = p.links.filter((l) => l.ifname !== 'lo' && !parse.isLinkUsable(l)).map((l) => l.ifname);
      return {
        status: down.length > 0 ? 'fail' : 'ok',
        summary: down.length > 0 ? `down: ${down.join(', ')}` : `${p.links.length} link(s) up`,
        facts: { kind: 'network', down },
      };
    }),
    sshTask('chaos-flag', 'Chaos flag', 'chaosFlag', (r) => {
      const p = parse.parseChaosFlag(r.stdout);
      if (p.kind === 'unknown') return { status: 'unknown', summary: p.reason };
      const present = p.kind === 'present';
      return {
        status: present ? 'fail' : 'ok',
        summary: present ? '/etc/okome/CHAOS_ENABLE is present' : 'no chaos flag',
        facts: { kind: 'chaos-flag', present },
      };
    }),
    sshTask('firewall', 'Firewall rules', 'firewallRules', (r) => {
      if (r.exitCode !== 0)
        return {
          status: 'unknown',
          summary: `iptables-save exited ${r.exitCode ?? r.signal ?? '?'}: ${r.stderr.trim().slice(0, 200)}`,
        };
      const p = parse.parseIptables(r.stdout, config.firewall.allowedRules);
      if (p.kind === 'unknown') return { status: 'unknown', summary: p.reason };
      return {
        status: p.unexpected.length > 0 ? 'fail' : 'ok',
        summary:
          p.unexpected.length > 0
            ? `${p.unexpected.length} unexpected rule(s): ${p.unexpected[0] ?? ''}`
            : 'default policies only',
        facts: { kind: 'firewall', unexpected: p.unexpected },
      };
    }),
  );
  if (runsNginx) {
    tasks.push(
      sshTask('streaming', 'Streaming directives', 'nginxConfig', (r) => {
        if (r.exitCode !== 0)
          return {
            status: 'unknown',
            summary: `nginx -T exited ${r.exitCode ?? r.signal ?? '?'}: ${r.stderr.trim().slice(0, 200)}`,
          };
        const p = parse.parseStreamingDirectives(r.stdout);
        if (p.kind === 'unknown')
          return { status: 'unknown', summary: p.reason, evidence: `$ nginx -T\n(${r.stdout.length} bytes)` };
        const missing = p.locations
          .filter((l) => l.missing.length > 0)
          .map((l) => ({ location: l.path, directives: l.missing.map((d) => directiveText(d)) }));
        return {
          status: missing.length > 0 ? 'fail' : 'ok',
          summary:
            missing.length > 0
              ? missing.map((m) => `${m.location} lacks ${m.directives.join(', ')}`).join('; ')
              : `${p.locations.length} API/stream location(s) unbuffered with 600 s timeouts`,
          facts: { kind: 'streaming', missing },
          evidence:
            missing.length > 0
              ? missing.map((m) => `location ${m.location}: missing ${m.directives.join('; ')}`).join('\n')
              : `(${p.locations.map((l) => l.path).join(', ')})`,
        };
      }),
      sshTask('nginx-hit-ratio', 'nginx hit ratio (log tail)', 'accessLogTail', (r) => {
        const p = parse.parseAccessLogHitRatio(r.stdout);
        if (p.kind === 'unknown') return { status: 'unknown', summary: p.reason };
        const hits = p.counts.HIT;
        const misses = p.counts.MISS;
        deps.history.addNginxRatio({
          at: deps.now(),
          node: node.name,
          ratio: p.hitRatio,
          lookups: hits + misses,
        });
        const counts = Object.entries(p.counts)
          .filter(([, v]) => v > 0)
          .map(([k, v]) => `cache=${k}: ${v}`)
          .join('\n');
        // A handful of lines says nothing about a ratio: judge only a meaningful sample.
        if (p.hitRatio === null || hits + misses < MIN_LOG_LOOKUPS) {
          return {
            status: 'ok',
            summary: `too few HIT/MISS lines to judge (${hits + misses} in the last ${p.lines} log lines)`,
            facts: { kind: 'hit-ratio', ratio: p.hitRatio, hits, misses, source: 'log' },
            evidence: counts === '' ? '(empty log tail)' : counts,
          };
        }
        return {
          status: p.hitRatio < th.nginxHitRatio ? 'warn' : 'ok',
          summary: `${(p.hitRatio * 100).toFixed(1)} % over the last ${hits + misses} HIT/MISS lines`,
          facts: { kind: 'hit-ratio', ratio: p.hitRatio, hits, misses, source: 'log' },
          evidence: counts,
        };
      }),
    );
  }
  if (node.roles.includes('frontend')) {
    tasks.push(
      sshTask('prewarm-timer', 'Prewarm timer', 'prewarmTimer', (r) => {
        const p = parse.parseSystemctlStatus(r.stdout, r.exitCode);
        if (p.kind === 'unknown') return { status: 'unknown', summary: p.reason };
        if (p.kind === 'not-found')
          return {
            status: 'warn',
            summary: 'okome-prewarm.timer is not installed',
            facts: { kind: 'prewarm-timer', state: 'not-found' },
          };
        return {
          status: p.activeState === 'active' ? 'ok' : 'warn',
          summary: `${p.activeState}${p.subState ? ` (${p.subState})` : ''}${p.trigger ? `, next ${p.trigger.at}` : ''}`,
          facts: { kind: 'prewarm-timer', state: p.activeState },
        };
      }),
    );
  }
  if (node.services.includes('keepalived')) {
    tasks.push(
      sshTask('keepalived-journal', 'keepalived journal (10 min)', 'journalTail', (r) => {
        const p = parse.parseJournal(r.stdout);
        if (p.kind === 'unknown') return { status: 'unknown', summary: p.reason };
        const transitions = parse
          .keepalivedTransitions(p.entries)
          .map((e) => `${e.time} ${e.host} → ${e.state}`);
        return {
          status: 'ok',
          summary:
            transitions.length > 0
              ? `${transitions.length} transition(s), last: ${transitions.at(-1) ?? ''}`
              : `${p.entries.length} line(s), no transition`,
          facts: { kind: 'keepalived-journal', transitions, lines: p.entries.length },
          evidence: r.stdout.split('\n').slice(-30).join('\n'),
        };
      }),
    );
  }
  return tasks;
}

/** Which window a Redis hit ratio was taken over, in the operator's words. */
function windowWords(facts: FactsOf<'hit-ratio'>): string {
  if (facts.source !== 'window') return 'Redis uptime (cumulative: too little traffic in the window)';
  // No span: Redis restarted within it, so the window is its uptime.
  if (facts.windowMs === undefined) return 'the window since the previous sample (Redis restarted since)';
  const s = Math.round(facts.windowMs / 1000);
  const span = s < 120 ? `${s} s` : `${Math.round(s / 60)} min`;
  return `the last ${span} (since ${facts.windowStart === 'kept' ? 'the sample an earlier run kept' : 'the previous sample'})`;
}
