import type { CheckResult } from '../domain/check-result.js';
import type { Incident, ProposedAction } from '../domain/classify.js';
import type { DeadmanNotice } from '../domain/deadman.js';
import type { FailoverCause } from '../domain/failover.js';
import type { StatusReport } from '../domain/report.js';
import type { SilenceDuration, SilenceMatcher } from '../domain/silence.js';
import type { MessagePayload } from '../outbox/payload.js';
import type { IncidentAlert, Incident as IncidentRecord } from '../store/store-port.js';

/**
 * How the use cases' messages look: the use cases decide what to say and when; an adapter
 * (src/slack/slack-presenter.ts) turns each message into the chat platform's payload. Every
 * value from outside (check output, alert labels, user text) is escaped there, not here.
 */

/** The lifecycle shown on an incident's channel message. */
export interface RootState {
  /** The incident's id in the store: what its Ack button carries. */
  readonly incidentId: number;
  readonly status: 'open' | 'resolved';
  readonly resolvedAt?: number;
  readonly reason?: string;
  readonly acknowledged?: { readonly by: string; readonly at: number };
  /** Show the Ack button (open and not yet acknowledged). */
  readonly ackButton: boolean;
}

/** Failover and VIP notices, as facts; the adapter words them. */
export type VipNotice =
  | {
      readonly kind: 'moved';
      readonly from: string;
      readonly to: string;
      readonly at: number;
      readonly source: string;
    }
  | {
      readonly kind: 'split-brain';
      readonly holders: readonly string[];
      readonly address: string;
      readonly at: number;
    }
  | {
      readonly kind: 'no-holder';
      readonly address: string;
      readonly at: number;
      readonly lastHolder: string | undefined;
    }
  | { readonly kind: 'back'; readonly holder: string; readonly at: number }
  | {
      /** Why the VIP moved, once it settled: the cause in words, its advice, the offered action. */
      readonly kind: 'cause';
      readonly cause: FailoverCause;
      readonly advice: readonly string[];
      readonly actions: readonly ProposedAction[];
      /** Set when the settle time ran out before the VIP settled. */
      readonly unsettled?: string;
    };

/** The silences one click made, as the thread shows them. */
export interface SilenceView {
  readonly incidentId: number;
  readonly createdBy: string;
  readonly duration: SilenceDuration;
  readonly endsAt: number;
  readonly matcherSets: readonly (readonly SilenceMatcher[])[];
  /** Alertmanager's ids. */
  readonly silenceIds: readonly string[];
  /** Ended before its time by a click (or replaced by a newer silence). */
  readonly expired?: { readonly by: string; readonly at: number; readonly replaced: boolean };
}

export interface IncidentPresenter {
  progress(what: string, done: number, total: number, problems: readonly CheckResult[]): MessagePayload;
  summary(
    report: StatusReport,
    options: {
      readonly hitRatios: readonly number[];
      readonly requestedBy?: string;
      /** The incident's thread (channel and root message ref), when it has one. */
      readonly threadOf: (
        incident: Incident,
      ) => { readonly channel: string; readonly ref: string } | undefined;
    },
  ): MessagePayload;
  checkList(checks: readonly CheckResult[]): MessagePayload[];

  /** The channel message of a classified incident. */
  incidentRoot(incident: Incident, report: StatusReport, state: RootState): MessagePayload;
  /** The channel message of an incident with no classified diagnosis (an alert, a failover). */
  plainRoot(record: IncidentRecord, headline: string | undefined, state: RootState): MessagePayload;
  evidence(incident: Incident, checks: readonly CheckResult[]): MessagePayload[];
  /** The first diagnosis of an incident opened by an alert or a VIP event. */
  firstDiagnosis(incident: Incident, report: StatusReport): MessagePayload;
  /** A later diagnosis that still shows it. */
  stillPresent(incident: Incident, report: StatusReport): MessagePayload;
  /** The symptom came back soon after a resolve: same incident, same thread. */
  reopened(record: IncidentRecord, resolvedAgoMs: number): MessagePayload;
  resolved(record: IncidentRecord, reason: string): MessagePayload;
  acknowledged(user: string, at: number): MessagePayload;

  alertRoot(title: string, node: string | null, alertname: string): MessagePayload;
  alertResolved(alertname: string, node: string | null, at: number): MessagePayload;
  /** With `silenceFor`, the incident's "Silence 1 h / 4 h" buttons under it. */
  alertSummary(
    alerts: readonly IncidentAlert[],
    silenceFor?: { readonly incidentId: number },
  ): MessagePayload;
  /** A silence made from the thread, with "Expire silence" while it is active. */
  silence(view: SilenceView): MessagePayload;
  /** A silence that could not be made or ended: what Alertmanager (or the network) said. */
  silenceFailed(what: 'silence' | 'expire', reason: string): MessagePayload;
  /** The Watchdog is overdue (the monitoring path is down), or back. */
  deadman(notice: DeadmanNotice, alertname: string): MessagePayload;
  vipNotice(notice: VipNotice): MessagePayload;
  /** An action the catalogue cannot plan for this incident (config problem), said in the thread. */
  cannotOffer(actionId: string, reason: string): MessagePayload;
}
