import type { Diagnostics, Scope } from '../diagnostics/diagnose.js';
import type { CheckResult } from '../domain/check-result.js';
import type { StatusReport } from '../domain/report.js';
import type { Logger } from '../logger.js';
import type { Outbox } from '../outbox/outbox.js';
import type { IncidentService } from './incident-service.js';
import type { IncidentPresenter } from './presenter.js';

/**
 * `/okome status | validate | check` and the diagnoses alerts ask for: a progress message
 * updated as checks finish, then the report; the incidents it shows are recorded by the
 * incident service (opened, continued or reopened, with their evidence and actions) and, after
 * a full status, open incidents whose checks are healthy again are resolved. Identical requests
 * running at once share one diagnosis.
 */

export interface StatusUseCaseDeps {
  readonly diagnostics: Diagnostics;
  readonly incidents: IncidentService;
  readonly outbox: Outbox;
  readonly presenter: IncidentPresenter;
  readonly logger: Logger;
  readonly now: () => number;
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

export class StatusUseCase {
  /** Real window samples only: a status that could not measure adds no point to the sparkline. */
  private readonly hitRatios: number[] = [];
  private readonly inFlight = new Map<
    string,
    Promise<{ report: StatusReport; threads: ReadonlyMap<string, string> }>
  >();
  constructor(private readonly deps: StatusUseCaseDeps) {}

  async run(request: StatusRequest): Promise<StatusReport> {
    const { diagnostics, outbox, logger, presenter } = this.deps;
    const what = request.scope.kind === 'check' ? `check ${request.scope.target}` : request.scope.kind;
    const total = diagnostics.count(request.scope);
    const progressRef = await outbox.enqueuePost({
      channel: request.channel,
      ...(request.threadRef === undefined ? {} : { threadRef: request.threadRef }),
      payload: presenter.progress(what, 0, total, []),
    });
    const key = JSON.stringify(request.scope);
    const running = this.inFlight.get(key);
    let report: StatusReport;
    let threads: ReadonlyMap<string, string>;
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
    await outbox.enqueueUpdate({
      messageRef: progressRef,
      payload: presenter.summary(report, {
        hitRatios: [...this.hitRatios],
        ...(request.requester === 'bot' ? {} : { requestedBy: request.requester }),
        threadOf: (i) => {
          const ref = threads.get(i.key);
          return ref === undefined ? undefined : { channel: this.deps.incidents.channel, ref };
        },
      }),
    });
    // Isolated, every check says the same "no answer": the verdict is the message, not 36 lines.
    if (report.incidents.length === 0 && report.isolation === undefined) {
      for (const m of presenter.checkList(report.checks))
        await outbox.enqueuePost({
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
  ): Promise<{ report: StatusReport; threads: ReadonlyMap<string, string> }> {
    const { diagnostics, outbox, presenter, incidents } = this.deps;
    const problems: CheckResult[] = [];
    let lastProgress = this.deps.now();
    // Progress writes are chained and awaited before the summary, which must land last.
    let progressWrites: Promise<void> = Promise.resolve();
    const report = await diagnostics.run(request.scope, ({ done, result }) => {
      if (result.status !== 'ok') problems.push(result);
      // Slack shows about one update a second anyway: store one every PROGRESS_EVERY_MS, not
      // one per check (each is a durable write); the outbox coalesces what is still pending.
      if (this.deps.now() - lastProgress < PROGRESS_EVERY_MS || done === total) return;
      lastProgress = this.deps.now();
      const payload = presenter.progress(what, done, total, problems);
      progressWrites = progressWrites
        .then(() => outbox.enqueueUpdate({ messageRef: progressRef, payload }))
        .catch((error: unknown) => this.deps.logger.warn({ err: error }, 'cannot store a progress update'));
    });
    await progressWrites;
    const redisRatio = report.checks.find((c) => c.id === 'redis-hit-ratio');
    if (redisRatio?.facts?.kind === 'hit-ratio' && redisRatio.facts.ratio !== null) {
      this.hitRatios.push(redisRatio.facts.ratio);
      if (this.hitRatios.length > HIT_RATIO_HISTORY) this.hitRatios.shift();
    }
    const threads = await incidents.recordDiagnosis(report, request.requester);
    if (request.scope.kind === 'status') await incidents.resolveHealed(report);
    return { report, threads };
  }
}
