import type { LoadedConfig } from '../../config/load-config.js';
import type { Diagnostics, Scope } from '../../diagnostics/diagnose.js';
import type { CheckResult } from '../../domain/check-result.js';
import type { Incident } from '../../domain/classify.js';
import type { StatusReport } from '../../domain/report.js';
import type { Logger } from '../../logger.js';
import type { Outbox } from '../../outbox/outbox.js';
import type {
  AlertStore,
  Incident as IncidentRow,
  IncidentStore,
  TimelineStore,
} from '../../store/store-port.js';
import {
  renderEvidence,
  renderIncidentRoot,
  renderResolved,
  renderStillOpen,
} from '../render/incident-message.js';
import { renderCheckList, renderProgress, renderSummary } from '../render/status-message.js';

/**
 * `/okome status | validate | check`: a progress message updated as checks finish, then the
 * report; incidents opened (or reused by key) in the incident channel with their evidence in
 * the thread; open incidents whose checks are healthy again resolved. Everything is written to
 * the store and the outbox first; the outbox delivers to Slack.
 */

export interface StatusFlowDeps {
  readonly config: LoadedConfig;
  readonly diagnostics: Diagnostics;
  readonly store: IncidentStore & TimelineStore & Pick<AlertStore, 'incidentAlerts'>;
  readonly outbox: Outbox;
  readonly logger: Logger;
  readonly now: () => number;
  /** After an incident's messages are queued: offers its actions (remediation). */
  readonly onIncident?: (row: IncidentRow, incident: Incident, requester: string) => void;
}

export interface StatusRequest {
  readonly scope: Scope;
  readonly channel: string;
  /** A Slack user ID, or 'bot' for alerts. */
  readonly requester: string;
  /** Post the progress and the report in this thread (an alert's incident) instead of the channel. */
  readonly threadRef?: string;
}

const HIT_RATIO_HISTORY = 20;
const PROGRESS_EVERY_MS = 250;

export class StatusFlow {
  private readonly hitRatios: (number | null)[] = [];
  private readonly inFlight = new Map<
    string,
    Promise<{ report: StatusReport; threads: ReadonlySet<string> }>
  >();
  constructor(private readonly deps: StatusFlowDeps) {}

  async run(request: StatusRequest): Promise<StatusReport> {
    const { diagnostics, outbox, logger } = this.deps;
    const what = request.scope.kind === 'check' ? `check ${request.scope.target}` : request.scope.kind;
    const total = diagnostics.count(request.scope);
    const progressRef = outbox.enqueuePost({
      channel: request.channel,
      ...(request.threadRef === undefined ? {} : { threadRef: request.threadRef }),
      payload: renderProgress(what, 0, total, []),
    });
    const key = JSON.stringify(request.scope);
    const running = this.inFlight.get(key);
    let report: StatusReport;
    let threads: ReadonlySet<string>;
    if (running !== undefined) {
      // The same diagnosis is already running (several people asked at once): share it, so
      // the cache layer is probed once and the incidents are posted once.
      ({ report, threads } = await running);
    } else {
      const leader = this.lead(request, what, total, progressRef);
      this.inFlight.set(key, leader);
      try {
        ({ report, threads } = await leader);
      } finally {
        this.inFlight.delete(key);
      }
    }
    const incidentChannel = this.deps.config.slack.incidentChannel;
    outbox.enqueueUpdate({
      messageRef: progressRef,
      payload: renderSummary(report, {
        hitRatios: [...this.hitRatios],
        ...(request.requester === 'bot' ? {} : { requestedBy: request.requester }),
        threadHint: (i) => (threads.has(i.key) ? `Thread: <#${incidentChannel}>` : undefined),
      }),
    });
    if (report.incidents.length === 0) {
      for (const m of renderCheckList(report.checks))
        outbox.enqueuePost({
          channel: request.channel,
          threadRef: request.threadRef ?? progressRef,
          payload: m,
        });
    }
    logger.info(
      {
        scope: request.scope,
        requester: request.requester,
        incidents: report.incidents.map((i) => i.key),
        ms: report.durationMs,
      },
      'diagnosis done',
    );
    return report;
  }

  /** Runs the diagnosis with live progress, then records incidents and resolutions, once. */
  private async lead(
    request: StatusRequest,
    what: string,
    total: number,
    progressRef: string,
  ): Promise<{ report: StatusReport; threads: ReadonlySet<string> }> {
    const { diagnostics, outbox } = this.deps;
    const problems: CheckResult[] = [];
    let lastProgress = this.deps.now();
    const report = await diagnostics.run(request.scope, ({ done, result }) => {
      if (result.status !== 'ok') problems.push(result);
      // Slack shows about one update a second anyway: store one every PROGRESS_EVERY_MS, not
      // one per check (each is a durable write); the outbox coalesces what is still pending.
      if (this.deps.now() - lastProgress < PROGRESS_EVERY_MS || done === total) return;
      lastProgress = this.deps.now();
      outbox.enqueueUpdate({ messageRef: progressRef, payload: renderProgress(what, done, total, problems) });
    });
    const redisRatio = report.checks.find((c) => c.id === 'redis-hit-ratio');
    if (redisRatio?.facts?.kind === 'hit-ratio') {
      this.hitRatios.push(redisRatio.facts.ratio);
      if (this.hitRatios.length > HIT_RATIO_HISTORY) this.hitRatios.shift();
    }
    const threads = this.recordIncidents(report, request.requester);
    if (request.scope.kind === 'status') this.resolveHealed(report);
    return { report, threads };
  }

  /** Opens or reuses one incident per key; returns the keys that have a thread. */
  private recordIncidents(report: StatusReport, requester: string): Set<string> {
    const { store, outbox, now, config } = this.deps;
    const channel = config.slack.incidentChannel;
    const keys = new Set<string>();
    for (const incident of report.incidents) {
      const { incident: row, created } = store.openOrReuseIncident({
        key: incident.key,
        number: incident.number,
        title: incident.title,
        channel,
        requester,
        now: now(),
      });
      // The whole report: an approval's precondition is judged against the diagnosis it came from.
      store.saveReport(row.id, report);
      store.appendTimeline({
        incidentId: row.id,
        at: now(),
        kind: 'diagnosis',
        text: `${created ? 'Opened' : 'Seen again'}: ${incident.summary}`,
        data: {
          evidence: incident.evidence,
          actions: incident.actions,
          held: incident.held ?? null,
          requester,
        },
      });
      const root = renderIncidentRoot(incident, report, { status: 'open' });
      let rootRef = row.rootRef;
      if (rootRef === null) {
        rootRef = outbox.enqueuePost({ channel, payload: root });
        store.setIncidentRootRef(row.id, rootRef);
      } else {
        outbox.enqueueUpdate({ messageRef: rootRef, payload: root });
        outbox.enqueuePost({ channel, threadRef: rootRef, payload: renderStillOpen(incident, report) });
      }
      for (const m of renderEvidence(incident, report.checks)) {
        outbox.enqueuePost({ channel, threadRef: rootRef, payload: m });
      }
      this.deps.onIncident?.({ ...row, rootRef }, incident, requester);
      keys.add(incident.key);
    }
    return keys;
  }

  /**
   * An open incident is resolved when a full status no longer shows it and every check that
   * showed it has been judged again as passing: a node we cannot see heals nothing.
   */
  private resolveHealed(report: StatusReport): void {
    const { store, outbox, now } = this.deps;
    const present = new Set(report.incidents.map((i) => i.key));
    const byId = new Map(report.checks.map((c) => [c.id, c]));
    for (const open of store.openIncidents()) {
      if (present.has(open.key)) continue;
      // Failovers and unmapped alerts are not diagnosis keys: they end by their own events.
      if (open.key.startsWith('failover:') || open.key.startsWith('alert:')) continue;
      // An alert still firing keeps its incident open, whatever the checks say.
      if (store.incidentAlerts(open.id).some((a) => a.status === 'firing')) continue;
      const evidence = evidenceIds(open.lastReport, open.key);
      const healed = evidence.every((id) => {
        const c = byId.get(id);
        return c === undefined || c.status === 'ok' || c.status === 'warn';
      });
      if (!healed) continue;
      const why = 'A status found its checks healthy again.';
      if (!store.resolveIncident(open.id, now(), why)) continue;
      store.appendTimeline({ incidentId: open.id, at: now(), kind: 'resolved', text: why });
      if (open.rootRef !== null) {
        outbox.enqueuePost({
          channel: open.channel,
          threadRef: open.rootRef,
          payload: renderResolved(open, why),
        });
        outbox.enqueueUpdate({ messageRef: open.rootRef, payload: renderResolved(open, why) });
      }
    }
  }
}

function evidenceIds(lastReport: unknown, key: string): string[] {
  if (typeof lastReport !== 'object' || lastReport === null) return [];
  const incidents = (lastReport as { incidents?: unknown }).incidents;
  if (!Array.isArray(incidents)) return [];
  const mine = incidents.find(
    (i: unknown) => typeof i === 'object' && i !== null && (i as { key?: unknown }).key === key,
  ) as { evidence?: unknown } | undefined;
  const ids = mine?.evidence;
  return Array.isArray(ids) ? ids.filter((x): x is string => typeof x === 'string') : [];
}
