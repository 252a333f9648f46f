import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { type ApprovalState, approvalStates } from '../domain/approval.js';
import type { CheckStatus } from '../domain/check-result.js';
import type { OutboxCounts, OutboxOp } from '../store/store-port.js';

/**
 * The bot's own metrics (prom-client), served at GET /metrics. What the store already knows
 * (outbox depth, open incidents, approvals and remediation outcomes) is read when Prometheus
 * scrapes, so no code path has to remember to update it; events the store does not keep
 * (Slack calls, status runs, check failures, HTTP answers, SSH handshakes) are counted at the one
 * place each happens (src/metrics/instrument.ts wraps those places).
 */

/** What the scrape-time gauges read. */
export interface MetricsSources {
  outboxCounts(): Promise<OutboxCounts>;
  openIncidentNumbers(): Promise<readonly string[]>;
  approvals(): Promise<readonly { readonly state: ApprovalState; readonly actionId: string }[]>;
  /** The SSH pool's live connections, handshakes and commands so far; absent without one. */
  readonly ssh?: {
    openConnections(): number;
    handshakes(): number;
    /** Commands started on each node (one SSH channel each: what the bot costs the Pi). */
    execCounts(): ReadonlyMap<string, number>;
  };
  now(): number;
}

export type SlackCallResult = 'ok' | 'rate_limited' | 'retry' | 'failed';

/** Approval states in which a remediation ran (or was cut by a restart) to an outcome. */
const OUTCOME_STATES: readonly ApprovalState[] = ['succeeded', 'failed', 'interrupted'];

// Status runs take ~0.1 s on a healthy LAN and up to the whole deadline (8 s) when a Pi is dead.
const STATUS_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16];

export class BotMetrics {
  readonly registry = new Registry();
  private readonly slackCalls: Counter<'op' | 'result'>;
  private readonly statusDuration: Histogram<'scope'>;
  private readonly checkFailures: Counter<'check' | 'status'>;
  private readonly httpRequests: Counter<'route' | 'code'>;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    // process_resident_memory_bytes, event-loop lag, heap: the Pi-sized budget's own figures.
    collectDefaultMetrics({ register: this.registry });
    this.slackCalls = new Counter({
      name: 'okome_slack_calls_total',
      help: 'Slack Web API calls made by the outbox, by operation and result (ok, rate_limited = 429, retry, failed).',
      labelNames: ['op', 'result'],
      registers,
    });
    this.statusDuration = new Histogram({
      name: 'okome_status_duration_seconds',
      help: 'How long a diagnosis (status, validate, check) took, by scope.',
      labelNames: ['scope'],
      buckets: STATUS_BUCKETS,
      registers,
    });
    this.checkFailures = new Counter({
      name: 'okome_check_failures_total',
      help: 'Checks that failed or could not judge (unreachable, timeout, unknown), by check and status.',
      labelNames: ['check', 'status'],
      registers,
    });
    this.httpRequests = new Counter({
      name: 'okome_http_requests_total',
      help: 'Requests answered by the HTTP server, by route (the path mounted, or "other") and status code.',
      labelNames: ['route', 'code'],
      registers,
    });

    // Scrape-time gauges. prom-client awaits each collect; one failing store read fails the
    // scrape (a 500), which Prometheus records as up == 0: better than stale numbers.
    new Gauge({
      name: 'okome_outbox_pending',
      help: 'Outbox rows waiting to be delivered to Slack.',
      registers,
      async collect() {
        const counts = await sources.outboxCounts();
        this.set(counts.pending);
        failedGauge.set(counts.failed);
        oldestGauge.set(
          counts.oldestPendingCreatedAt === null
            ? 0
            : Math.max(0, (sources.now() - counts.oldestPendingCreatedAt) / 1000),
        );
      },
    });
    const failedGauge = new Gauge({
      name: 'okome_outbox_failed',
      help: 'Outbox rows Slack refused for good (kept for the record).',
      registers,
    });
    const oldestGauge = new Gauge({
      name: 'okome_outbox_oldest_pending_age_seconds',
      help: 'Age of the oldest undelivered outbox row; 0 when none waits.',
      registers,
    });
    new Gauge({
      name: 'okome_incidents_open',
      help: 'Open incidents by runbook number ("other" for incidents without one).',
      labelNames: ['number'],
      registers,
      async collect() {
        const numbers = await sources.openIncidentNumbers();
        this.reset();
        for (const n of ['1', '2', '3', '4', '5', '5b', '6', '7']) this.set({ number: n }, 0);
        for (const n of numbers) this.inc({ number: n === '' ? 'other' : n });
      },
    });
    const outcomes = new Gauge({
      name: 'okome_remediation_outcomes',
      help: 'Remediations that ran, by action and outcome (succeeded, failed, interrupted), as the store keeps them.',
      labelNames: ['action', 'outcome'],
      registers,
    });
    new Gauge({
      name: 'okome_approvals',
      help: 'Approval requests by state.',
      labelNames: ['state'],
      registers,
      async collect() {
        const approvals = await sources.approvals();
        this.reset();
        outcomes.reset();
        for (const state of approvalStates) this.set({ state }, 0);
        for (const a of approvals) {
          this.inc({ state: a.state });
          if (OUTCOME_STATES.includes(a.state)) outcomes.inc({ action: a.actionId, outcome: a.state });
        }
      },
    });
    const ssh = sources.ssh;
    if (ssh !== undefined) {
      new Gauge({
        name: 'okome_ssh_connections_open',
        help: 'Pooled SSH connections to the nodes, open now.',
        registers,
        collect() {
          this.set(ssh.openConnections());
        },
      });
      new Counter({
        name: 'okome_ssh_handshakes_total',
        help: 'SSH handshakes completed (each is a new connection; on a Pi 3 they are what is expensive).',
        registers,
        collect() {
          // The pool owns the count; mirror it (it only grows).
          this.reset();
          this.inc(ssh.handshakes());
        },
      });
      new Counter({
        name: 'okome_ssh_execs_total',
        help: 'Commands started on each node over SSH (one channel, one sshd session each).',
        labelNames: ['node'],
        registers,
        collect() {
          this.reset();
          for (const [node, n] of ssh.execCounts()) this.inc({ node }, n);
        },
      });
    }
  }

  slackCall(op: OutboxOp | 'permalink' | 'auth', result: SlackCallResult): void {
    this.slackCalls.inc({ op, result });
  }

  statusRun(scope: string, durationMs: number): void {
    this.statusDuration.observe({ scope }, durationMs / 1000);
  }

  checkFailed(check: string, status: CheckStatus): void {
    this.checkFailures.inc({ check, status });
  }

  httpResponse(route: string, code: number): void {
    this.httpRequests.inc({ route, code: String(code) });
  }

  /** The text exposition format and its content type. */
  async render(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}
