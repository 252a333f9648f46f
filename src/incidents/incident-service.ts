import { BOT_REQUESTER } from '../domain/approval.js';
import type { CheckResult } from '../domain/check-result.js';
import type { Incident, VipState } from '../domain/classify.js';
import { type HitRatioSample, hitRatioSampleOf } from '../domain/hit-ratio-sample.js';
import {
  DEFAULT_INCIDENT_POLICY,
  type IncidentLife,
  type IncidentPolicy,
  keyKind,
  onAcknowledge,
  onResolve,
  onSeenAgain,
  type ResolveCause,
  resolveReason,
} from '../domain/incident.js';
import type { CheckBrief } from '../domain/incident-report.js';
import { readStoredReport, type StatusReport } from '../domain/report.js';
import { type IncidentRecovery, windowedSymptoms } from '../domain/windowed-evidence.js';
import type { Logger } from '../logger.js';
import type { Outbox } from '../outbox/outbox.js';
import type { MessagePayload } from '../outbox/payload.js';
import type {
  AlertStore,
  Incident as IncidentRecord,
  IncidentStore,
  OpenHow,
  TimelineStore,
} from '../store/store-port.js';
import type { IncidentPresenter, RootState } from './presenter.js';

/**
 * One owner for an incident's whole life: open (by key; a flapping symptom reopens the same
 * thread), diagnose (root, evidence, first vs later diagnosis), offer remediation, acknowledge,
 * note, resolve. Every resolve, whatever its cause, closes the incident's approvals first:
 * what has not run is cancelled (its card loses its buttons), what runs finishes and is
 * recorded, then the incident resolves. State goes to the store before any message is queued.
 */

/** What the incident needs from remediation; the approvals service implements it. */
export interface IncidentApprovals {
  /** After a diagnosis: cards for the incident's proposed actions (no twin of a live one). */
  offer(record: IncidentRecord, incident: Incident, requester: string): Promise<void>;
  /** Cancels what has not started (cards say why) and waits for runs in progress to be recorded. */
  closeForIncident(incidentId: number, reason: string): Promise<void>;
  /** A run of one of the incident's approvals is in progress in this process. */
  isRunning(incidentId: number): boolean;
}

export interface IncidentServiceDeps {
  readonly incidentChannel: string;
  readonly store: IncidentStore & TimelineStore & Pick<AlertStore, 'incidentAlerts'>;
  readonly outbox: Outbox;
  readonly presenter: IncidentPresenter;
  readonly approvals: IncidentApprovals;
  /** The post-incident report, queued into the thread once an incident resolves. */
  readonly reports?: { publish(record: IncidentRecord): Promise<unknown> };
  readonly logger: Logger;
  readonly now: () => number;
  /** Work that may outlive the request (a resolve waiting for a run): a shutdown waits for it. */
  readonly track: (work: Promise<unknown>) => void;
  readonly policy?: IncidentPolicy;
  readonly mention?: (user: string) => string;
  /** Windowed symptoms (seen in `seen` at `since`) judged over the samples taken since. */
  readonly recovery: (incident: Incident, seen: readonly CheckResult[], since: number) => IncidentRecovery;
}

export interface OpenInput {
  readonly key: string;
  readonly number: string;
  readonly title: string;
  readonly requester: string;
}

export type ResolveOutcome = 'resolved' | 'already-resolved' | 'not-found' | 'not-by-this-cause';

/** A healthy status's view of a healed incident: its evidence checks, the VIP's state, the hit ratio. */
interface Healing {
  readonly checks: readonly CheckBrief[];
  readonly vip: VipState;
  readonly hitRatio?: HitRatioSample;
}

/** The hit ratio a report judged, as a timeline entry's `hitRatio` (absent when none was measured). */
function hitRatioData(checks: readonly CheckResult[]): { hitRatio?: HitRatioSample } {
  const sample = hitRatioSampleOf(checks);
  return sample === undefined ? {} : { hitRatio: sample };
}

/** The evidence checks as the report keeps them: id, status, one line. */
function briefs(evidence: readonly string[], checks: readonly CheckResult[]): CheckBrief[] {
  const byId = new Map(checks.map((c) => [c.id, c]));
  return evidence.flatMap((id) => {
    const c = byId.get(id);
    return c === undefined ? [] : [{ id, status: c.status, summary: c.summary }];
  });
}

const lifeOf = (r: IncidentRecord): IncidentLife => ({
  status: r.status,
  resolvedAt: r.resolvedAt,
  acknowledgedBy: r.acknowledgedBy,
  acknowledgedAt: r.acknowledgedAt,
});

export class IncidentService {
  private readonly policy: IncidentPolicy;
  private readonly log: Logger;

  constructor(private readonly deps: IncidentServiceDeps) {
    this.policy = deps.policy ?? DEFAULT_INCIDENT_POLICY;
    this.log = deps.logger.child({ component: 'incidents' });
  }

  get channel(): string {
    return this.deps.incidentChannel;
  }

  byId(id: number): Promise<IncidentRecord | undefined> {
    return this.deps.store.incidentById(id);
  }

  /**
   * An incident named by an operator: by key, by runbook number (the newest open one with it),
   * or, with no reference, the newest open incident. `openOnly: false` also finds a resolved
   * one by key.
   */
  async find(ref: string | undefined, options: { openOnly: boolean }): Promise<IncidentRecord | undefined> {
    const { store } = this.deps;
    const open = (await store.openIncidents()).sort((a, b) => b.openedAt - a.openedAt);
    if (ref === undefined) return open[0];
    const byKey =
      open.find((i) => i.key === ref) ?? (options.openOnly ? undefined : await store.incidentByKey(ref));
    return byKey ?? open.find((i) => i.number === ref);
  }

  /**
   * The incident for this key: the open one, a recently resolved one reopened (same thread,
   * said there), or a new one. The caller opens the thread of a new incident.
   */
  async open(input: OpenInput): Promise<{ record: IncidentRecord; how: OpenHow }> {
    const { store, now } = this.deps;
    const at = now();
    const { incident: record, how } = await store.openOrReuseIncident(
      { ...input, channel: this.deps.incidentChannel, now: at },
      (latest) => onSeenAgain(lifeOf(latest), at, this.policy) === 'reopen',
    );
    if (how === 'reopened') {
      const agoMs = at - (await this.lastResolvedAt(record));
      await store.appendTimeline({
        incidentId: record.id,
        at,
        kind: 'note',
        text: `Reopened: the symptom is back ${Math.round(agoMs / 1000)} s after it resolved`,
      });
      if (record.rootRef !== null) {
        await this.post(record, this.deps.presenter.reopened(record, agoMs));
        await this.refreshRoot(record);
      }
      this.log.info({ incident: record.key, agoMs }, 'incident reopened');
    }
    return { record, how };
  }

  /** The incident's thread: its root message, posted now with `root` when it has none. */
  async ensureThread(record: IncidentRecord, root: () => MessagePayload): Promise<string> {
    if (record.rootRef !== null) return record.rootRef;
    // The root post and the incident's pointer to it commit together; read again inside, since
    // another caller (an alert batch, a diagnosis) may have opened the thread since `record` was read.
    return this.deps.store.atomically(async () => {
      const latest = await this.deps.store.incidentById(record.id);
      if (latest?.rootRef != null) return latest.rootRef;
      const ref = await this.deps.outbox.enqueuePost({ channel: record.channel, payload: root() });
      await this.deps.store.setIncidentRootRef(record.id, ref);
      return ref;
    });
  }

  /**
   * A diagnosis: each classified incident opened, continued or reopened, its report stored, its
   * root and thread updated, its actions offered. Returns the threads by incident key.
   */
  async recordDiagnosis(report: StatusReport, requester: string): Promise<Map<string, string>> {
    const { store, now, presenter } = this.deps;
    const threads = new Map<string, string>();
    for (const incident of report.incidents) {
      const { record, how } = await this.open({
        key: incident.key,
        number: incident.number,
        title: incident.title,
        requester,
      });
      // An incident opened by an alert or a VIP event has no diagnosis yet: its first one is
      // "the diagnosis", not "still present".
      const first = how === 'created' || readStoredReport(record.lastReport) === undefined;
      // The whole report: an approval's re-check is judged against the diagnosis it came from.
      await store.saveReport(record.id, report);
      await store.appendTimeline({
        incidentId: record.id,
        at: now(),
        kind: 'diagnosis',
        text: `${how === 'created' ? 'Opened' : how === 'reopened' ? 'Reopened' : first ? 'Diagnosed' : 'Seen again'}: ${incident.summary}`,
        data: {
          evidence: incident.evidence,
          checks: briefs(incident.evidence, report.checks),
          vip: report.vip.state,
          actions: incident.actions,
          held: incident.held ?? null,
          requester,
          ...hitRatioData(report.checks),
        },
      });
      const saved = { ...record, lastReport: report };
      const root = presenter.incidentRoot(incident, report, this.rootState(saved));
      let rootRef = record.rootRef;
      if (rootRef === null) {
        rootRef = await this.ensureThread(saved, () => root);
      } else {
        await this.deps.outbox.enqueueUpdate({ messageRef: rootRef, payload: root });
        if (how === 'reused') {
          await this.post(
            saved,
            first ? presenter.firstDiagnosis(incident, report) : presenter.stillPresent(incident, report),
          );
        }
      }
      for (const m of presenter.evidence(incident, report.checks)) await this.post({ ...saved, rootRef }, m);
      await this.deps.approvals.offer({ ...saved, rootRef }, incident, requester);
      threads.set(incident.key, rootRef);
    }
    return threads;
  }

  /**
   * A diagnosis said in an incident's existing thread, its root left as it is (a failover's
   * root is its notice): the report stored, the verdict and its evidence posted, the actions
   * offered. `verdict` is the message that says it in words.
   */
  async diagnoseInThread(
    record: IncidentRecord,
    incident: Incident,
    report: StatusReport,
    verdict: MessagePayload,
  ): Promise<void> {
    const { store, now, presenter } = this.deps;
    if (record.rootRef === null) return;
    await store.saveReport(record.id, report);
    await store.appendTimeline({
      incidentId: record.id,
      at: now(),
      kind: 'diagnosis',
      text: `Diagnosed: ${incident.summary}`,
      data: {
        evidence: incident.evidence,
        checks: briefs(incident.evidence, report.checks),
        vip: report.vip.state,
        actions: incident.actions,
        held: incident.held ?? null,
        ...(report.failover === undefined ? {} : { failover: report.failover }),
        ...hitRatioData(report.checks),
      },
    });
    const saved = { ...record, lastReport: report };
    await this.post(saved, verdict);
    for (const m of presenter.evidence(incident, report.checks)) await this.post(saved, m);
    await this.deps.approvals.offer(saved, incident, BOT_REQUESTER);
  }

  /**
   * Open diagnosis incidents a full status no longer shows, whose every evidence check was
   * judged again as passing, whose windowed symptoms (a hit ratio, a budget at its limit) have
   * recovered over the samples since they were seen, and with no alert still firing: resolved.
   * A node the bot cannot see heals nothing; one quiet rate-limit minute heals nothing either.
   */
  async resolveHealed(report: StatusReport): Promise<void> {
    const present = new Set(report.incidents.map((i) => i.key));
    const byId = new Map(report.checks.map((c) => [c.id, c]));
    const healed: { open: IncidentRecord; healing: Healing }[] = [];
    for (const open of await this.deps.store.openIncidents()) {
      if (present.has(open.key) || keyKind(open.key) !== 'diagnosis') continue;
      if ((await this.deps.store.incidentAlerts(open.id)).some((a) => a.status === 'firing')) continue;
      const seen = readStoredReport(open.lastReport);
      const incident = seen?.incidents.find((i) => i.key === open.key);
      const evidence = incident?.evidence ?? [];
      const passing = evidence.every((id) => {
        const c = byId.get(id);
        return c === undefined || c.status === 'ok' || c.status === 'warn';
      });
      if (!passing) continue;
      if (
        seen !== undefined &&
        incident !== undefined &&
        windowedSymptoms(incident, seen.checks).length > 0
      ) {
        const recovery = this.deps.recovery(incident, seen.checks, Date.parse(seen.startedAt));
        if (!recovery.recovered) {
          this.log.debug({ incident: open.key, why: recovery.details }, 'not recovered yet');
          continue;
        }
      }
      healed.push({
        open,
        healing: {
          checks: briefs(evidence, report.checks),
          vip: report.vip.state,
          ...hitRatioData(report.checks),
        },
      });
    }
    // A resolve waits for a run in progress to be recorded: that must not hold the status reply.
    const later = healed.filter(({ open }) => this.deps.approvals.isRunning(open.id));
    for (const { open, healing } of later)
      this.deps.track(this.resolve(open.id, 'healthy-status', undefined, healing));
    await Promise.all(
      healed
        .filter((h) => !later.includes(h))
        .map(({ open, healing }) => this.resolve(open.id, 'healthy-status', undefined, healing)),
    );
  }

  /**
   * The one way an incident closes. Its approvals are closed first (pending → cancelled, a run
   * in progress finishes and is recorded); then the incident is resolved, said in its thread,
   * and its root keeps what it was with a resolved marker.
   */
  async resolve(
    id: number,
    cause: ResolveCause,
    detail?: string,
    /** What the status that judged it healed saw: the report's "after" and its charts' last sample. */
    healing?: Healing,
  ): Promise<{ outcome: ResolveOutcome; record?: IncidentRecord }> {
    const { store, now, presenter } = this.deps;
    const before = await store.incidentById(id);
    if (before === undefined) return { outcome: 'not-found' };
    const decision = onResolve(lifeOf(before), before.key, cause);
    if (decision.verdict === 'refused') {
      return { outcome: before.status === 'open' ? 'not-by-this-cause' : 'already-resolved', record: before };
    }
    const why = resolveReason(cause, detail, this.deps.mention);
    await this.deps.approvals.closeForIncident(id, `the incident was resolved: ${why}`);
    const at = now();
    const resolved = await store.atomically(async () => {
      if (!(await store.resolveIncident(id, at, why))) return false;
      await store.appendTimeline({
        incidentId: id,
        at,
        kind: 'resolved',
        text: why,
        data: { cause, ...healing },
      });
      return true;
    });
    if (!resolved) return { outcome: 'already-resolved', record: before };
    const record = (await store.incidentById(id)) ?? before;
    if (record.rootRef !== null) {
      await this.post(record, presenter.resolved(record, why));
      await this.refreshRoot(record);
      // The resolve is done and said: a report that cannot be queued is logged, not a failed resolve.
      await this.deps.reports?.publish(record).catch((error: unknown) => {
        this.log.error({ err: error, incident: record.key }, 'the post-incident report could not be queued');
      });
    }
    this.log.info({ incident: record.key, cause }, 'incident resolved');
    return { outcome: 'resolved', record };
  }

  /** Ack: who takes it, and when (time to acknowledge); the root shows it. */
  async acknowledge(id: number, user: string): Promise<{ ok: true } | { ok: false; reason: string }> {
    const { store, now, presenter } = this.deps;
    const record = await store.incidentById(id);
    if (record === undefined) return { ok: false, reason: 'This incident no longer exists.' };
    const decision = onAcknowledge(lifeOf(record), user, this.deps.mention);
    if (decision.verdict === 'refused') return { ok: false, reason: decision.reason };
    const at = now();
    const acknowledged = await store.atomically(async () => {
      if (!(await store.acknowledgeIncident(id, user, at))) return false;
      await store.appendTimeline({
        incidentId: id,
        at,
        kind: 'note',
        text: `Acknowledged by ${user}`,
        data: { user },
      });
      return true;
    });
    if (!acknowledged) {
      const latest = (await store.incidentById(id)) ?? record;
      const again = onAcknowledge(lifeOf(latest), user, this.deps.mention);
      return { ok: false, reason: again.verdict === 'refused' ? again.reason : 'Try again.' };
    }
    const acked = (await store.incidentById(id)) ?? record;
    if (acked.rootRef !== null) {
      await this.post(acked, presenter.acknowledged(user, at));
      await this.refreshRoot(acked);
    }
    return { ok: true };
  }

  /** A line in the timeline (and the thread when `say` is given). */
  async note(record: IncidentRecord, text: string, say?: MessagePayload): Promise<void> {
    await this.deps.store.appendTimeline({ incidentId: record.id, at: this.deps.now(), kind: 'note', text });
    if (say !== undefined) await this.post(record, say);
  }

  /** Posts in the incident's thread (nothing when it has none yet); returns the message's ref. */
  async post(
    record: Pick<IncidentRecord, 'channel' | 'rootRef'>,
    payload: MessagePayload,
  ): Promise<string | undefined> {
    if (record.rootRef === null) return undefined;
    return this.deps.outbox.enqueuePost({ channel: record.channel, threadRef: record.rootRef, payload });
  }

  /** Replaces a message the incident posted (a summary that repeats update). */
  update(messageRef: string, payload: MessagePayload): Promise<void> {
    return this.deps.outbox.enqueueUpdate({ messageRef, payload });
  }

  private rootState(record: IncidentRecord): RootState {
    return {
      incidentId: record.id,
      status: record.status,
      ...(record.resolvedAt === null ? {} : { resolvedAt: record.resolvedAt }),
      ...(record.resolvedReason === null ? {} : { reason: record.resolvedReason }),
      ...(record.acknowledgedBy === null || record.acknowledgedAt === null
        ? {}
        : { acknowledged: { by: record.acknowledgedBy, at: record.acknowledgedAt } }),
      ackButton: record.status === 'open' && record.acknowledgedBy === null,
    };
  }

  /** Re-renders the root from what is stored: the classified incident if known, else its headline. */
  private async refreshRoot(record: IncidentRecord): Promise<void> {
    if (record.rootRef === null) return;
    const report = readStoredReport(record.lastReport);
    const incident = report?.incidents.find((i) => i.key === record.key);
    const state = this.rootState(record);
    // A failover's root stays its notice: its diagnosis is said in the thread.
    const payload =
      report !== undefined && incident !== undefined && keyKind(record.key) !== 'failover'
        ? this.deps.presenter.incidentRoot(incident, report, state)
        : this.deps.presenter.plainRoot(record, await this.headline(record), state);
    await this.deps.outbox.enqueueUpdate({ messageRef: record.rootRef, payload });
  }

  /** What opened an unclassified incident: its first alert or notice. */
  private async headline(record: IncidentRecord): Promise<string | undefined> {
    const timeline = await this.deps.store.timeline(record.id);
    return timeline.find((e) => e.kind === 'notice' || e.kind === 'alert')?.text;
  }

  private async lastResolvedAt(record: IncidentRecord): Promise<number> {
    const timeline = await this.deps.store.timeline(record.id);
    const resolved = timeline.filter((e) => e.kind === 'resolved').at(-1);
    return resolved?.at ?? record.openedAt;
  }
}
