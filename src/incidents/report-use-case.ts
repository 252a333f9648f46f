import { approvalStates } from '../domain/approval.js';
import { buildIncidentCharts } from '../domain/incident-charts.js';
import { buildIncidentReport, type IncidentReport } from '../domain/incident-report.js';
import type { Logger } from '../logger.js';
import type { Outbox } from '../outbox/outbox.js';
import type { MessagePayload, UploadPayload } from '../outbox/payload.js';
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
  /** Said instead of a chart Slack would not take (uploads refused). */
  chartRefused(title: string): MessagePayload;
}

export interface IncidentReportsDeps {
  readonly store: ReportStore;
  readonly outbox: Outbox;
  readonly presenter: ReportPresenter;
  /** `slack.uploads`: false posts the report as a message (no `files:write` scope needed). */
  readonly uploads: boolean;
  readonly now: () => number;
  readonly logger: Logger;
  /** Renders the charts (SVG → PNG); without it the report goes without charts. */
  readonly renderPng?: (svg: string) => Promise<Uint8Array>;
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
    const charts = await this.renderCharts(record, report.filename.replace(/\.md$/, ''));
    for (const chart of charts) {
      await outbox.enqueueUpload({ channel: record.channel, threadRef: record.rootRef, upload: chart });
    }
    this.deps.logger.info(
      { incident: record.key, file: report.filename, charts: charts.length },
      'post-incident report queued',
    );
    return 'uploaded';
  }

  /** The charts as PNG uploads; one that cannot be drawn is logged and left out, never the report. */
  private async renderCharts(record: IncidentRecord, base: string): Promise<UploadPayload[]> {
    const render = this.deps.renderPng;
    if (render === undefined) return [];
    const timeline = await this.deps.store.timeline(record.id);
    const uploads: UploadPayload[] = [];
    for (const chart of buildIncidentCharts({ incident: record, timeline, generatedAt: this.deps.now() })) {
      try {
        const png = await render(chart.svg);
        uploads.push({
          filename: `${base}-${chart.name}.png`,
          title: chart.title,
          encoding: 'base64',
          content: Buffer.from(png).toString('base64'),
          fallback: this.deps.presenter.chartRefused(chart.title),
        });
      } catch (error) {
        this.deps.logger.error(
          { err: error, incident: record.key, chart: chart.name },
          'a chart could not be drawn',
        );
      }
    }
    return uploads;
  }
}
