import { approvalStates } from '../domain/approval.js';
import { buildIncidentReport, type IncidentReport } from '../domain/incident-report.js';
import type { Logger } from '../logger.js';
import type { Outbox } from '../outbox/outbox.js';
import type { MessagePayload } from '../outbox/payload.js';
import type {
  AlertStore,
  ApprovalRecordStore,
  Incident as IncidentRecord,
  IncidentStore,
  TimelineStore,
} from '../store/store-port.js';

/**
 * The post-incident report: read from the store, built by the pure builder, and put where it
 * belongs: a Markdown file in the incident's thread (Slack's external upload, through the
 * outbox), or the same text as a message when uploads are off. The CLI reads it the same way.
 */

export type ReportStore = Pick<IncidentStore, 'incidentByKey' | 'latestIncidentWithNumber'> &
  Pick<TimelineStore, 'timeline'> &
  Pick<AlertStore, 'incidentAlerts'> &
  Pick<ApprovalRecordStore, 'approvalsInStates'>;

/** An incident named by an operator: a key (`2:pi-b`), else a runbook number (the newest with it). */
export async function findReportedIncident(
  store: Pick<IncidentStore, 'incidentByKey' | 'latestIncidentWithNumber'>,
  ref: string,
): Promise<IncidentRecord | undefined> {
  return (await store.incidentByKey(ref)) ?? (await store.latestIncidentWithNumber(ref));
}

/** Everything the store kept about the incident, built into its report. */
export async function reportOf(
  store: ReportStore,
  record: IncidentRecord,
  now: number,
): Promise<IncidentReport> {
  const [timeline, alerts, approvals] = await Promise.all([
    store.timeline(record.id),
    store.incidentAlerts(record.id),
    store.approvalsInStates(approvalStates),
  ]);
  return buildIncidentReport({
    incident: record,
    timeline,
    alerts,
    approvals: approvals.filter((a) => a.incidentId === record.id),
    generatedAt: now,
  });
}

/** How the report looks in Slack: the comment a file comes with, or the whole of it as a message. */
export interface ReportPresenter {
  reportComment(report: IncidentReport): string;
  reportMessage(report: IncidentReport): MessagePayload;
}

export interface IncidentReportsDeps {
  readonly store: ReportStore;
  readonly outbox: Outbox;
  readonly presenter: ReportPresenter;
  /** `slack.uploads`: false posts the report as a message (no `files:write` scope needed). */
  readonly uploads: boolean;
  readonly now: () => number;
  readonly logger: Logger;
}

export type PublishOutcome = 'uploaded' | 'posted' | 'no-thread';

export class IncidentReports {
  constructor(private readonly deps: IncidentReportsDeps) {}

  build(record: IncidentRecord): Promise<IncidentReport> {
    return reportOf(this.deps.store, record, this.deps.now());
  }

  /** Queues the report into the incident's thread; nothing when the incident has no thread. */
  async publish(record: IncidentRecord): Promise<PublishOutcome> {
    if (record.rootRef === null) return 'no-thread';
    const report = await this.build(record);
    const { outbox, presenter } = this.deps;
    const message = presenter.reportMessage(report);
    if (!this.deps.uploads) {
      await outbox.enqueuePost({ channel: record.channel, threadRef: record.rootRef, payload: message });
      return 'posted';
    }
    await outbox.enqueueUpload({
      channel: record.channel,
      threadRef: record.rootRef,
      upload: {
        filename: report.filename,
        title: report.title,
        encoding: 'utf8',
        content: report.markdown,
        comment: presenter.reportComment(report),
        fallback: message,
      },
    });
    this.deps.logger.info({ incident: record.key, file: report.filename }, 'post-incident report queued');
    return 'uploaded';
  }
}
