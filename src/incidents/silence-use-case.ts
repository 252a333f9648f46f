import { z } from 'zod';
import type { AlertmanagerSilences } from '../alerts/alertmanager-api.js';
import { distinctMatcherSets, SILENCE_DURATIONS, type SilenceDuration } from '../domain/silence.js';
import { asOkomeError } from '../errors.js';
import type { Logger } from '../logger.js';
import type {
  AlertSilence,
  AlertStore,
  Incident as IncidentRecord,
  SilenceStore,
  TimelineStore,
} from '../store/store-port.js';
import type { IncidentService } from './incident-service.js';
import type { IncidentPresenter, SilenceView } from './presenter.js';

/**
 * Silences from an alert-opened incident's thread: "Silence 1 h / 4 h" makes one Alertmanager
 * silence per alert of the incident (exact matchers on its labels, creator = the Slack user's
 * name, comment = the thread's permalink); "Expire silence" ends them. What was made is stored,
 * shown in the thread, and every failure is said there too. Who may click is the caller's check.
 */

export interface SilenceUseCaseDeps {
  readonly store: SilenceStore & AlertStore & TimelineStore;
  readonly alertmanager: AlertmanagerSilences;
  readonly incidents: Pick<IncidentService, 'byId' | 'post' | 'update'>;
  readonly presenter: Pick<IncidentPresenter, 'silence' | 'silenceFailed'>;
  /** The Slack user's name (users.info), the user id when it cannot be had. */
  readonly userName: (userId: string) => Promise<string>;
  /** The thread's permalink, when Slack has it. */
  readonly permalink: (record: IncidentRecord) => Promise<string | undefined>;
  readonly logger: Logger;
  readonly now: () => number;
}

export type SilenceOutcome = { ok: true } | { ok: false; reason: string };

// The timeline's alert entries (written by the alert use case): only what is needed, checked.
const alertData = z.object({ fingerprint: z.string(), labels: z.record(z.string(), z.string()) });

export class SilenceUseCase {
  private readonly log: Logger;
  /** One click at a time per incident: two quick clicks must not make two sets of silences. */
  private readonly queues = new Map<number, Promise<unknown>>();

  constructor(private readonly deps: SilenceUseCaseDeps) {
    this.log = deps.logger.child({ component: 'silences' });
  }

  silence(incidentId: number, duration: SilenceDuration, userId: string): Promise<SilenceOutcome> {
    return this.serially(incidentId, () => this.silenceNow(incidentId, duration, userId));
  }

  expire(incidentId: number, userId: string): Promise<SilenceOutcome> {
    return this.serially(incidentId, () => this.expireNow(incidentId, userId));
  }

  private async silenceNow(
    incidentId: number,
    duration: SilenceDuration,
    userId: string,
  ): Promise<SilenceOutcome> {
    const { store, incidents, presenter, alertmanager, now } = this.deps;
    const record = await incidents.byId(incidentId);
    if (record?.rootRef == null) return { ok: false, reason: 'This incident has no thread to silence from.' };
    const matcherSets = distinctMatcherSets(await this.labelSets(incidentId));
    if (matcherSets.length === 0)
      return { ok: false, reason: 'This incident has no alert labels to silence.' };
    const [createdByName, permalink] = await Promise.all([
      this.deps.userName(userId),
      this.deps.permalink(record).catch(() => undefined),
    ]);
    const previous = await store.activeSilences(incidentId, now());
    const startsAt = now();
    const endsAt = startsAt + SILENCE_DURATIONS[duration];
    const made: AlertSilence[] = [];
    let failure: string | undefined;
    for (const matchers of matcherSets) {
      try {
        const silenceId = await alertmanager.createSilence({
          matchers,
          startsAt,
          endsAt,
          createdBy: createdByName,
          comment: permalink ?? `okome incident ${incidentId}: ${record.title}`,
        });
        made.push(
          await store.insertSilence({
            incidentId,
            silenceId,
            matchers,
            createdBy: userId,
            createdByName,
            startsAt,
            endsAt,
          }),
        );
      } catch (error) {
        failure = describe(error);
        this.log.warn({ err: error, incidentId }, 'creating a silence failed');
        break;
      }
    }
    // Silences made before a failure are real in Alertmanager: shown, so they can be expired.
    if (made.length > 0) {
      const ref = await incidents.post(record, presenter.silence(viewOf(incidentId, made, duration)));
      if (ref !== undefined)
        await store.setSilenceMessageRef(
          made.map((s) => s.id),
          ref,
        );
      await store.appendTimeline({
        incidentId,
        at: startsAt,
        kind: 'note',
        text: `Silenced in Alertmanager for ${duration} by ${userId} (${made.map((s) => s.silenceId).join(', ')})`,
        data: { silences: made.map((s) => s.silenceId), user: userId, endsAt },
      });
    }
    if (failure !== undefined) {
      await incidents.post(record, presenter.silenceFailed('silence', failure));
      return { ok: true };
    }
    // The newest silence replaces any earlier one: one active set per incident.
    if (previous.length > 0) await this.end(record, previous, userId, true);
    return { ok: true };
  }

  private async expireNow(incidentId: number, userId: string): Promise<SilenceOutcome> {
    const record = await this.deps.incidents.byId(incidentId);
    if (record === undefined) return { ok: false, reason: 'This incident no longer exists.' };
    const active = await this.deps.store.activeSilences(incidentId, this.deps.now());
    if (active.length === 0) return { ok: false, reason: 'No silence of this incident is active.' };
    await this.end(record, active, userId, false);
    return { ok: true };
  }

  /** Expires silences in Alertmanager, records who did, and updates the messages that show them. */
  private async end(
    record: IncidentRecord,
    silences: readonly AlertSilence[],
    userId: string,
    replaced: boolean,
  ): Promise<void> {
    const { store, alertmanager, incidents, presenter, now } = this.deps;
    const ended: AlertSilence[] = [];
    let failure: string | undefined;
    for (const silence of silences) {
      try {
        await alertmanager.expireSilence(silence.silenceId);
        if (await store.markSilenceExpired(silence.id, userId, now())) ended.push(silence);
      } catch (error) {
        failure = describe(error);
        this.log.warn({ err: error, incidentId: record.id }, 'expiring a silence failed');
        break;
      }
    }
    const at = now();
    const byMessage = new Map<string, AlertSilence[]>();
    for (const s of ended) {
      if (s.messageRef === null) continue;
      byMessage.set(s.messageRef, [...(byMessage.get(s.messageRef) ?? []), s]);
    }
    for (const [ref, group] of byMessage) {
      const first = group[0];
      if (first === undefined) continue;
      await incidents.update(ref, {
        ...presenter.silence({
          ...viewOf(record.id, group, durationOf(first)),
          expired: { by: userId, at, replaced },
        }),
      });
    }
    if (ended.length > 0) {
      await store.appendTimeline({
        incidentId: record.id,
        at,
        kind: 'note',
        text: `${replaced ? 'Silence replaced' : 'Silence expired'} by ${userId} (${ended.map((s) => s.silenceId).join(', ')})`,
        data: { silences: ended.map((s) => s.silenceId), user: userId },
      });
    }
    if (failure !== undefined) await incidents.post(record, presenter.silenceFailed('expire', failure));
  }

  /** The label sets of the incident's alerts: the firing ones, else all it has seen. */
  private async labelSets(incidentId: number): Promise<Record<string, string>[]> {
    const { store } = this.deps;
    const alerts = await store.incidentAlerts(incidentId);
    const firing = new Set(alerts.filter((a) => a.status === 'firing').map((a) => a.fingerprint));
    const wanted = firing.size > 0 ? firing : new Set(alerts.map((a) => a.fingerprint));
    const latest = new Map<string, Record<string, string>>();
    for (const entry of await store.timeline(incidentId)) {
      if (entry.kind !== 'alert') continue;
      const data = alertData.safeParse(entry.data);
      if (data.success && wanted.has(data.data.fingerprint))
        latest.set(data.data.fingerprint, data.data.labels);
    }
    return [...latest.values()];
  }

  private serially<T>(incidentId: number, work: () => Promise<T>): Promise<T> {
    const before = this.queues.get(incidentId) ?? Promise.resolve();
    const run = before.then(work, work);
    const settled = run.catch(() => undefined);
    this.queues.set(incidentId, settled);
    void settled.then(() => {
      if (this.queues.get(incidentId) === settled) this.queues.delete(incidentId);
    });
    return run;
  }
}

function describe(error: unknown): string {
  const e = asOkomeError(error);
  return e.userSafe ? e.message : 'internal error, see the logs';
}

function durationOf(silence: AlertSilence): SilenceDuration {
  const ms = silence.endsAt - silence.startsAt;
  return ms > SILENCE_DURATIONS['1h'] ? '4h' : '1h';
}

function viewOf(
  incidentId: number,
  silences: readonly AlertSilence[],
  duration: SilenceDuration,
): SilenceView {
  const first = silences[0];
  return {
    incidentId,
    createdBy: first?.createdBy ?? 'bot',
    duration,
    endsAt: first?.endsAt ?? 0,
    matcherSets: silences.map((s) => s.matchers),
    silenceIds: silences.map((s) => s.silenceId),
  };
}
