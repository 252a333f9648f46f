import { incidentForAlert } from '../alerts/alert-config.js';
import type { AlertBatch } from '../alerts/alertmanager.js';
import type { KeepalivedEvent } from '../alerts/keepalived-hook.js';
import type { SetTimer, VipEvent } from '../alerts/vip-watcher.js';
import type { LoadedConfig } from '../config/load-config.js';
import type { Diagnostics } from '../diagnostics/diagnose.js';
import { BOT_REQUESTER } from '../domain/approval.js';
import type { ProposedAction } from '../domain/classify.js';
import {
  classifyFailover,
  failoverIncident,
  type SettleSample,
  type SettleVerdict,
  settleVerdict,
} from '../domain/failover.js';
import { incidentKeys, mayResolve } from '../domain/incident.js';
import type { StatusReport } from '../domain/report.js';
import { runbook } from '../domain/runbook.js';
import type { Logger } from '../logger.js';
import type { AlertStore, IncidentStore, TimelineStore } from '../store/store-port.js';
import type { IncidentService } from './incident-service.js';
import type { IncidentPresenter, VipNotice } from './presenter.js';
import type { StatusUseCase } from './status-use-case.js';

/**
 * Incidents that open themselves: Alertmanager alerts and VIP moves (keepalived's hook, or the
 * watcher as a fallback) open, join or reopen the incident for their key (the incident
 * service), post one short message with a thread, and run the diagnosis there, which offers
 * the runbook's actions as for a status. Repeats update one summary message instead of
 * posting again.
 */

export interface AlertUseCaseDeps {
  readonly config: LoadedConfig;
  readonly store: AlertStore & TimelineStore & Pick<IncidentStore, 'openIncidents' | 'atomically'>;
  readonly incidents: IncidentService;
  readonly presenter: IncidentPresenter;
  readonly diagnostics: Diagnostics;
  readonly status: StatusUseCase;
  readonly logger: Logger;
  readonly now: () => number;
  /** Work started from a webhook: tracked so a shutdown waits for it. */
  readonly track: (work: Promise<unknown>) => void;
  /** A delivery of the dead-man's switch alert (`alerts.deadman.alertname`), new or repeated. */
  readonly onWatchdog?: (at: number) => void;
  /** Alertmanager's API is configured: alert summaries carry the silence buttons. */
  readonly silences?: boolean;
  /** Waits between looks while a moved VIP settles (tests drive it with a manual clock). */
  readonly setTimer: SetTimer;
  /** The catalogue actions the bot itself is running now (approved or running), with their nodes. */
  readonly runningActions: () => Promise<readonly ProposedAction[]>;
}

/** Reports of one move by the hook and the watcher arrive within this of each other. */
const SAME_MOVE_MS = 30_000;

/** Between two looks at a VIP that is settling. */
const SETTLE_POLL_MS = 250;

/** One settle look from a checks report: the VIP's holders and keepalived's state per VIP node. */
function settleSampleOf(report: StatusReport, vipNodes: readonly string[]): SettleSample {
  const vip = report.vip.state;
  const holders =
    vip.kind === 'single'
      ? [vip.holder]
      : vip.kind === 'split'
        ? [...vip.holders]
        : vip.kind === 'none'
          ? []
          : undefined;
  const keepalived: Record<string, string | undefined> = {};
  for (const node of vipNodes) {
    const facts = report.checks.find((c) => c.id === `service:keepalived@${node}`)?.facts;
    keepalived[node] = facts?.kind === 'service' ? facts.state : undefined;
  }
  return { holders, keepalived };
}

/** What an alert's node label shows as when it names no configured node. */
export const UNKNOWN_NODE = 'unknown node';

interface Delivery {
  readonly repeated: readonly {
    readonly fingerprint: string;
    readonly status: string;
    readonly labels: Readonly<Record<string, string>>;
  }[];
  readonly receivedAt: number;
}

export class AlertUseCase {
  private readonly log: Logger;
  /** Incidents with a diagnosis queued or running: alert storms must not start one per alert. */
  private readonly diagnosing = new Map<number, { again: boolean }>();
  /** The VIP holder as last seen (hook or watcher), for "moved from X to Y". */
  private holder: string | undefined;
  /**
   * The last VIP move noticed (from→to) and when: the hook and the watcher report the same move,
   * which gets one notice. Any other move replaces it, so the next real failover (after the VIP
   * came back) is announced however soon it comes.
   */
  private lastMove: { readonly key: string; readonly at: number } | undefined;

  constructor(private readonly deps: AlertUseCaseDeps) {
    this.log = deps.logger.child({ component: 'alerts' });
  }

  // ── Alertmanager ────────────────────────────────────────────────────────────────────────

  async onAlerts(batch: AlertBatch, delivery: Delivery): Promise<void> {
    const { store, config, incidents, presenter } = this.deps;
    const touched = new Set<number>();
    const watchdog = config.alerts.deadman.alertname;
    const isWatchdog = (labels: Readonly<Record<string, string>>) =>
      ({ ...batch.commonLabels, ...labels }).alertname === watchdog;
    // The always-firing Watchdog only proves the monitoring path works: it never opens anything.
    if ([...batch.alerts, ...delivery.repeated].some((a) => isWatchdog(a.labels) && a.status === 'firing'))
      this.deps.onWatchdog?.(delivery.receivedAt);
    for (const alert of batch.alerts) {
      if (isWatchdog(alert.labels)) continue;
      const labels = { ...batch.commonLabels, ...alert.labels };
      const alertname = labels.alertname ?? 'unnamed';
      const mapped = incidentForAlert(labels, config.alerts.mapping, config.nodes);
      // Only configured names name a node; a label naming another is "unknown node" (its raw
      // value stays in the timeline's data, never in a message or a key).
      const node = mapped?.node ?? (mapped?.unknownNode === undefined ? null : UNKNOWN_NODE);
      const key =
        mapped === undefined
          ? incidentKeys.alert(alertname)
          : incidentKeys.diagnosis(mapped.incident, mapped.node === undefined ? [] : [mapped.node]);
      const title = mapped === undefined ? `Alert ${alertname}` : runbook[mapped.incident].title;
      const { record, how } = await incidents.open({
        key,
        number: mapped?.incident ?? 'alert',
        title,
        requester: BOT_REQUESTER,
      });
      const { alert: row, statusChanged } = await store.recordAlert({
        incidentId: record.id,
        fingerprint: alert.fingerprint,
        alertname,
        node,
        status: alert.status,
        at: delivery.receivedAt,
      });
      await store.appendTimeline({
        incidentId: record.id,
        at: delivery.receivedAt,
        kind: 'alert',
        text: `${alertname}${node === null ? '' : ` on ${node}`} ${alert.status}`,
        data: {
          fingerprint: alert.fingerprint,
          labels,
          annotations: alert.annotations,
          startsAt: alert.startsAt,
        },
      });
      const rootRef = await incidents.ensureThread(record, () => presenter.alertRoot(title, node, alertname));
      if (alert.status === 'resolved' && (statusChanged || row.count === 1)) {
        await incidents.post(
          { ...record, rootRef },
          presenter.alertResolved(alertname, node, delivery.receivedAt),
        );
      }
      touched.add(record.id);
      if (how !== 'reused') this.diagnose(record.id);
    }
    for (const r of delivery.repeated) {
      const incidentId = await store.incidentOfAlert(r.fingerprint);
      if (
        incidentId !== undefined &&
        (await store.touchAlert(incidentId, r.fingerprint, delivery.receivedAt))
      )
        touched.add(incidentId);
    }
    for (const id of touched) {
      await this.updateSummary(id);
      const alerts = await store.incidentAlerts(id);
      // Every alert of the incident resolved: a diagnosis decides whether it is over.
      if (alerts.length > 0 && alerts.every((a) => a.status === 'resolved')) this.diagnose(id);
    }
  }

  /** One message per incident: every alert with its deliveries and first/last seen. */
  private async updateSummary(incidentId: number): Promise<void> {
    const { store, incidents, presenter } = this.deps;
    const record = await incidents.byId(incidentId);
    if (record?.rootRef == null) return;
    // One transaction: two batches for one incident must not both find no summary and post two.
    await store.atomically(async () => {
      const payload = presenter.alertSummary(
        await store.incidentAlerts(incidentId),
        this.deps.silences === true && record.status === 'open' ? { incidentId } : undefined,
      );
      const ref = await store.summaryRef(incidentId);
      if (ref !== undefined) {
        await incidents.update(ref, payload);
        return;
      }
      const posted = await incidents.post(record, payload);
      if (posted !== undefined) await store.setSummaryRef(incidentId, posted);
    });
  }

  /** A diagnosis in the incident's thread; one at a time per incident, one more if asked meanwhile. */
  diagnose(incidentId: number): void {
    const running = this.diagnosing.get(incidentId);
    if (running !== undefined) {
      running.again = true;
      return;
    }
    const state = { again: false };
    this.diagnosing.set(incidentId, state);
    const loop = async () => {
      try {
        do {
          state.again = false;
          const incident = await this.deps.incidents.byId(incidentId);
          if (incident?.rootRef == null || incident.status !== 'open') return;
          await this.deps.status.run({
            scope: { kind: 'status' },
            channel: incident.channel,
            requester: BOT_REQUESTER,
            threadRef: incident.rootRef,
          });
          await this.resolveIfQuiet(incidentId);
        } while (state.again);
      } finally {
        this.diagnosing.delete(incidentId);
      }
    };
    this.deps.track(loop());
  }

  /** Incidents opened by unmapped alerts: resolved once every alert is resolved and a diagnosis ran. */
  private async resolveIfQuiet(incidentId: number): Promise<void> {
    const alerts = await this.deps.store.incidentAlerts(incidentId);
    if (alerts.length === 0 || alerts.some((a) => a.status === 'firing')) return;
    // The incident service refuses this cause for keys a status judges (mapped alerts).
    await this.deps.incidents.resolve(incidentId, 'alerts-resolved');
  }

  // ── VIP ─────────────────────────────────────────────────────────────────────────────────

  /** The watcher's first look: who holds the VIP now (no notice for a healthy baseline). */
  setHolder(holder: string | undefined): void {
    this.holder = holder;
  }

  /**
   * `watched`: the VIP holder the watcher last confirmed. A node cut off without leaving MASTER
   * (a dead link, a hung Pi) sends no hook when it comes back; if the hook names the node the
   * bot already believes holds the VIP while the watcher saw another, the VIP came back in
   * between and this is a new move, not the one already noticed.
   */
  async onKeepalived(event: KeepalivedEvent, watched?: string): Promise<void> {
    if (event.state !== 'MASTER') {
      this.log.info({ node: event.node, state: event.state }, 'keepalived transition');
      return;
    }
    if (this.holder === event.node && watched !== undefined && watched !== event.node) {
      this.holder = watched;
      this.lastMove = undefined;
    }
    const from = this.holder;
    this.holder = event.node;
    if (from !== undefined && from !== event.node)
      await this.failover(from, event.node, event.at, 'keepalived', event.receivedAt);
    else if (from === undefined) this.log.info({ node: event.node }, 'VIP holder learned from keepalived');
  }

  async onVipEvent(event: VipEvent): Promise<void> {
    switch (event.kind) {
      case 'holder-changed': {
        this.holder = event.to;
        await this.failover(event.from, event.to, event.at, 'VIP watcher');
        return;
      }
      case 'recovered': {
        const from = event.previousHolder ?? this.holder;
        this.holder = event.holder;
        if (from !== undefined && from !== event.holder)
          await this.failover(from, event.holder, event.at, 'VIP watcher');
        else await this.recovery(event.holder, event.at);
        return;
      }
      case 'no-holder':
      case 'split-brain': {
        const { config, incidents, presenter } = this.deps;
        const vipNodes = config.nodes.filter((n) => n.holdsVip).map((n) => n.name);
        const split = event.kind === 'split-brain';
        const { record } = await incidents.open({
          key: incidentKeys.vip(vipNodes),
          number: '3',
          title: split ? 'VIP split brain' : runbook['3'].title,
          requester: BOT_REQUESTER,
        });
        const notice: VipNotice = split
          ? { kind: 'split-brain', holders: event.holders, address: config.vip.address, at: event.at }
          : { kind: 'no-holder', address: config.vip.address, at: event.at, lastHolder: event.lastHolder };
        // Urgent: a VIP notice skips the channel's paced queue (it must not wait behind a storm).
        const payload = { ...presenter.vipNotice(notice), urgent: true };
        await this.deps.store.appendTimeline({
          incidentId: record.id,
          at: event.at,
          kind: 'notice',
          text: payload.text,
        });
        if (record.rootRef === null) await incidents.ensureThread(record, () => payload);
        // In an existing (or reopened) thread the notice is also shown in the channel: a VIP
        // event must never be buried in an old thread.
        else await incidents.post(record, { ...payload, reply_broadcast: true });
        this.diagnose(record.id);
        return;
      }
      default:
        this.log.info({ kind: event.kind, detail: event.detail }, 'VIP HTTP change');
    }
  }

  /**
   * "VIP moved from pi-a to pi-b at 03:12:07 (keepalived)" at once (urgent: ahead of the
   * channel's queue), then, once the VIP has settled, why it moved (failover.cause).
   */
  private async failover(
    from: string,
    to: string,
    at: number,
    source: string,
    receivedAt = this.deps.now(),
  ): Promise<void> {
    const { store, config, now, incidents, presenter } = this.deps;
    // The hook and the watcher report the same move: one notice. Decided before any await.
    const key = `${from}>${to}`;
    if (this.lastMove?.key === key && now() - this.lastMove.at < SAME_MOVE_MS) return;
    this.lastMove = { key, at: now() };
    const frontend = config.nodes.find((n) => n.roles.includes('frontend'))?.name;
    if (to === frontend) {
      await this.recovery(to, at);
      return;
    }
    // Taken now: the bot's own action may have finished by the time the VIP has settled.
    const running = await this.deps.runningActions();
    const { record } = await incidents.open({
      key: incidentKeys.failover(from),
      number: '4',
      title: `VIP failover from ${from}`,
      requester: BOT_REQUESTER,
    });
    const notice = { ...presenter.vipNotice({ kind: 'moved', from, to, at, source }), urgent: true };
    const root = record.rootRef ?? (await incidents.ensureThread(record, () => notice));
    if (record.rootRef !== null) await incidents.post(record, { ...notice, reply_broadcast: true });
    await store.appendTimeline({
      incidentId: record.id,
      at,
      kind: 'notice',
      text: `VIP moved from ${from} to ${to} (${source})`,
      data: { from, to, source, receivedAt, noticeRef: root },
    });
    this.deps.track(this.explainFailover(record.id, from, to, running));
  }

  /**
   * Waits for the VIP to settle (one holder, keepalived's states no longer changing; at most
   * the configured settle time), then classifies the cause from the old holder's checks and
   * says it in the thread, with the one action that fits.
   */
  private async explainFailover(
    incidentId: number,
    from: string,
    to: string,
    runningAtMove: readonly ProposedAction[],
  ): Promise<void> {
    const { config, diagnostics, now } = this.deps;
    const vipNodes = config.nodes.filter((n) => n.holdsVip).map((n) => n.name);
    const scope = {
      kind: 'checks' as const,
      checks: ['vip-owner', 'ssh', 'node-http', 'service'],
      nodes: [...new Set([...vipNodes, from])],
    };
    const startedAt = now();
    const samples: SettleSample[] = [];
    let report: StatusReport;
    let verdict: SettleVerdict;
    for (;;) {
      report = await diagnostics.run(scope);
      samples.push(settleSampleOf(report, vipNodes));
      verdict = settleVerdict(samples, { startedAt, now: now(), settleMs: config.alerts.failoverSettleMs });
      if (verdict.verdict !== 'waiting') break;
      await this.pause(SETTLE_POLL_MS);
    }
    const running = [...runningAtMove, ...(await this.deps.runningActions())];
    const cause = classifyFailover({ from, to, checks: report.checks, running });
    const incident = failoverIncident(cause, {
      key: incidentKeys.failover(from),
      to,
      nodes: config.nodes,
      actions: config.actions,
    });
    const unsettled = verdict.verdict === 'gave-up' ? verdict.reason : undefined;
    const diagnosis: StatusReport = {
      ...report,
      failover: {
        from,
        to,
        settled: unsettled === undefined,
        ...(unsettled === undefined ? {} : { settleNote: unsettled }),
        cause,
      },
      incidents: [incident],
    };
    const record = await this.deps.incidents.byId(incidentId);
    if (record === undefined || record.status !== 'open') return;
    this.log.info(
      { from, to, cause: cause.kind, settledMs: now() - startedAt, unsettled },
      'failover explained',
    );
    await this.deps.incidents.diagnoseInThread(
      record,
      incident,
      diagnosis,
      this.deps.presenter.vipNotice({
        kind: 'cause',
        cause,
        advice: incident.advice,
        actions: incident.actions,
        ...(unsettled === undefined ? {} : { unsettled }),
      }),
    );
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.deps.setTimer(resolve, ms);
    });
  }

  /** The VIP is back on the frontend: said in the failover and VIP threads, which then resolve. */
  private async recovery(holder: string, at: number): Promise<void> {
    const { store, incidents, presenter } = this.deps;
    for (const record of await store.openIncidents()) {
      if (!mayResolve(record.key, 'vip-back')) continue;
      await incidents.post(record, presenter.vipNotice({ kind: 'back', holder, at }));
      await store.appendTimeline({
        incidentId: record.id,
        at,
        kind: 'notice',
        text: `VIP back on ${holder}`,
      });
      this.deps.track(incidents.resolve(record.id, 'vip-back', holder));
    }
  }
}
