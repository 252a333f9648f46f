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
import type {
  AlertFollowUp,
  AlertStore,
  InboxStore,
  IncidentStore,
  TimelineStore,
  VipHolderStore,
} from '../store/store-port.js';
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
  readonly store: AlertStore &
    TimelineStore &
    InboxStore &
    VipHolderStore &
    Pick<IncidentStore, 'openIncidents' | 'atomically'>;
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
  /**
   * A VIP event while a failover drill runs: said as planned in the drill's thread (true), so
   * no incident is opened; false when no drill runs. Default: never planned.
   */
  readonly plannedMove?: (text: string) => Promise<boolean>;
  /**
   * Replicas: this replica's name and how long its claim on a follow-up lasts. Every replica sees
   * every pending follow-up; the claim makes one of them do it (one diagnosis, not one each).
   */
  readonly replica?: { readonly name: string; readonly leaseMs: number };
}

/**
 * Other VRRP instances' hooks for one failover arrive within this of the first; a MASTER hook
 * of another instance later than this for the holder on record is a new transition (see moved).
 */
const SAME_TRANSITION_MS = 5000;

/** What moved() is told: the VIP is on `to`, seen or reported at `at`. */
interface MoveReport {
  readonly to: string;
  readonly at: number;
  readonly source: string;
  readonly receivedAt?: number;
  /** The previous holder as the reporter saw it, used when none is on record yet. */
  readonly reportedFrom?: string | undefined;
  /** A watcher's look: when it began (a holder recorded since is newer news). */
  readonly seenSince?: number;
  /**
   * A keepalived MASTER transition of this `node/instance`: `to` did not hold the VIP a moment
   * before (a new request; copies of one are deduped by their signature before).
   */
  readonly transition?: string;
}

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

/** The inbox kind of accepted keepalived transitions. */
const KEEPALIVED_INBOX = 'keepalived';
/** A transition that fails this often is dropped (logged), so one bad event cannot block the rest. */
const INBOX_MAX_ATTEMPTS = 5;

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
  private readonly diagnosing = new Map<number, { again: boolean; done: Promise<void> }>();
  /** The follow-up pass in progress, if any (see followUp). */
  private following: { again: boolean; done: Promise<void> } | undefined;
  /** Incidents whose follow-up is in progress (its diagnosis may still run). */
  private readonly followingUp = new Set<number>();

  constructor(private readonly deps: AlertUseCaseDeps) {
    this.log = deps.logger.child({ component: 'alerts' });
  }

  // ── Alertmanager ────────────────────────────────────────────────────────────────────────

  /**
   * The store half of an alert batch, to run inside the webhook's transaction with the seen
   * marks (store work only): each new alert opens, joins or reopens its incident, with its alert
   * row, timeline entry and thread; repeats bump their alert. What is left (summary message,
   * diagnosis) is recorded as a follow-up in the same transaction, so a 2xx never loses it.
   */
  async attach(batch: AlertBatch, delivery: Delivery): Promise<void> {
    const { store, config, incidents, presenter, now } = this.deps;
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
      await store.requestAlertFollowUp(record.id, how !== 'reused', now());
    }
    for (const r of delivery.repeated) {
      const incidentId = await store.incidentOfAlert(r.fingerprint);
      if (
        incidentId !== undefined &&
        (await store.touchAlert(incidentId, r.fingerprint, delivery.receivedAt))
      )
        await store.requestAlertFollowUp(incidentId, false, now());
    }
  }

  /** A batch outside the webhook: attached in one transaction, then followed up. */
  async onAlerts(batch: AlertBatch, delivery: Delivery): Promise<void> {
    await this.deps.store.atomically(() => this.attach(batch, delivery));
    await this.followUp();
  }

  /**
   * Does the follow-ups the store holds (after a webhook's reply, at start-up, periodically):
   * each incident's summary updated, and a diagnosis when asked or when every alert resolved.
   * A follow-up is done once that diagnosis finished; one that fails stays for the next pass.
   * One pass at a time; a call meanwhile asks for one more.
   */
  followUp(): Promise<void> {
    if (this.following !== undefined) {
      this.following.again = true;
      return this.following.done;
    }
    const state = { again: false, done: Promise.resolve() };
    this.following = state;
    const pass = async () => {
      try {
        do {
          state.again = false;
          await this.handleKeepalivedInbox();
          for (const f of await this.deps.store.pendingAlertFollowUps()) await this.startFollowUp(f);
        } while (state.again);
      } finally {
        this.following = undefined;
      }
    };
    state.done = pass();
    return state.done;
  }

  /** The summary now (quick, keeps posts in order); the diagnosis tracked, the row done after it. */
  private async startFollowUp(listed: AlertFollowUp): Promise<void> {
    let f = listed;
    const { store } = this.deps;
    if (this.followingUp.has(f.incidentId)) return;
    this.followingUp.add(f.incidentId);
    const replica = this.deps.replica;
    const release = async () => {
      if (replica !== undefined) await store.releaseAlertFollowUp(f.incidentId, replica.name);
    };
    let diagnosis: Promise<void>;
    let diagnosing = false;
    try {
      if (replica !== undefined) {
        const at = this.deps.now();
        const claimed = await store.claimAlertFollowUp(f.incidentId, replica.name, at, at + replica.leaseMs);
        if (claimed === undefined) {
          this.followingUp.delete(f.incidentId);
          return;
        }
        f = claimed;
      }
      await this.updateSummary(f.incidentId);
      const alerts = await store.incidentAlerts(f.incidentId);
      // Every alert of the incident resolved: a diagnosis decides whether it is over.
      const allResolved = alerts.length > 0 && alerts.every((a) => a.status === 'resolved');
      diagnosing = f.diagnose || allResolved;
      diagnosis = diagnosing ? this.diagnose(f.incidentId) : Promise.resolve();
    } catch (error) {
      this.followingUp.delete(f.incidentId);
      this.log.warn({ err: error, incident: f.incidentId }, 'alert follow-up failed; retried later');
      await release().catch(() => {});
      return;
    }
    const finish = async () => {
      let done = false;
      try {
        await diagnosis;
        done = await store.completeAlertFollowUp(f.incidentId, f.version, diagnosing);
        // Asked again meanwhile: whichever replica looks next takes the newer request.
        if (!done) await release();
      } finally {
        this.followingUp.delete(f.incidentId);
      }
      // Alerts came in meanwhile (a newer request): their summary is due now, not at the sweep.
      if (!done) await this.followUp();
    };
    this.deps.track(finish());
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

  /**
   * A diagnosis in the incident's thread; one at a time per incident, one more if asked
   * meanwhile. Resolves once a diagnosis that started after the call has finished (its failure
   * is logged, not thrown).
   */
  diagnose(incidentId: number): Promise<void> {
    const running = this.diagnosing.get(incidentId);
    if (running !== undefined) {
      running.again = true;
      return running.done;
    }
    const state = { again: false, done: Promise.resolve() };
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
    const run = loop();
    this.deps.track(run);
    state.done = run.then(
      () => undefined,
      () => undefined,
    );
    return state.done;
  }

  /** Incidents opened by unmapped alerts: resolved once every alert is resolved and a diagnosis ran. */
  private async resolveIfQuiet(incidentId: number): Promise<void> {
    const alerts = await this.deps.store.incidentAlerts(incidentId);
    if (alerts.length === 0 || alerts.some((a) => a.status === 'firing')) return;
    // The incident service refuses this cause for keys a status judges (mapped alerts).
    await this.deps.incidents.resolve(incidentId, 'alerts-resolved');
  }

  // ── VIP ─────────────────────────────────────────────────────────────────────────────────

  /**
   * The watcher's first look (a start, or a new leader): who holds the VIP now. The holder on
   * record is the one last announced or seen; another one means the VIP moved while no watcher
   * looked (between two leaders, or while the bot was down), which is said now, once.
   */
  async watcherBaseline(holder: string | undefined, lookStartedAt: number): Promise<void> {
    if (holder === undefined) return;
    await this.deps.store.setWatchedVipHolder(holder, this.deps.now());
    // The time is when it was seen: the move itself happened earlier, unwatched.
    await this.moved({
      to: holder,
      at: this.deps.now(),
      source: 'VIP watcher, first look',
      seenSince: lookStartedAt,
    });
  }

  /**
   * The leader's watcher saw `holder` again, unchanged, in a look that began at `lookStartedAt`.
   * A different holder on record from before that look means the VIP moved back unseen: a node
   * cut off without leaving MASTER sends no hook when it returns, and a watcher that could not
   * see it meanwhile reports no change. Said now (a move, or the VIP back on the frontend). A
   * holder recorded during the look (a hook) is newer than what the look saw: left alone.
   */
  async watcherSteady(holder: string, lookStartedAt: number): Promise<void> {
    const known = await this.deps.store.vipHolder();
    if (known === undefined || known.holder === holder || known.at >= lookStartedAt) return;
    await this.moved({ to: holder, at: this.deps.now(), source: 'VIP watcher', seenSince: lookStartedAt });
  }

  /** The store half of a keepalived transition, in the webhook's transaction: kept until handled. */
  async receiveKeepalived(event: KeepalivedEvent): Promise<void> {
    await this.deps.store.addToInbox(KEEPALIVED_INBOX, event, this.deps.now());
  }

  /** Transitions accepted and not yet handled, oldest first; one that fails stays for the next pass. */
  private async handleKeepalivedInbox(): Promise<void> {
    const { store } = this.deps;
    for (const row of await store.inbox(KEEPALIVED_INBOX)) {
      try {
        await this.onKeepalived(row.payload as KeepalivedEvent);
        await store.removeFromInbox(row.id);
      } catch (error) {
        const attempts = await store.inboxAttemptFailed(row.id, String(error)).catch(() => row.attempts + 1);
        if (attempts < INBOX_MAX_ATTEMPTS) {
          this.log.warn({ err: error, attempts }, 'keepalived transition not handled; retried later');
          // Later transitions wait: they must not be handled before this one.
          return;
        }
        this.log.error(
          { err: error, event: row.payload },
          'keepalived transition dropped after repeated failures',
        );
        await store.removeFromInbox(row.id);
      }
    }
  }

  /**
   * A MASTER transition names the new holder; whether it is a move is decided against the holder
   * on record (moved), so the same move told by several replicas' hooks and the watcher is said
   * once.
   */
  async onKeepalived(event: KeepalivedEvent): Promise<void> {
    if (event.state !== 'MASTER') {
      this.log.info({ node: event.node, state: event.state }, 'keepalived transition');
      if (event.state === 'BACKUP') await this.leftForBackup(event);
      return;
    }
    await this.moved({
      to: event.node,
      at: event.at,
      source: 'keepalived',
      receivedAt: event.receivedAt,
      transition: `${event.node}/${event.instance}`,
    });
  }

  /**
   * A BACKUP hook from the holder on record: another node's adverts outrank it, so the VIP is
   * elsewhere; with two VIP nodes, on the other one, which is recorded (and said) now. A node cut
   * off without leaving MASTER sends no hook when it comes back: the old holder's BACKUP is the
   * only word of it, and without it the next failover to that holder would read as a repeat of
   * the last one and go unsaid (the watcher may not see the way back in time).
   */
  private async leftForBackup(event: KeepalivedEvent): Promise<void> {
    const known = await this.deps.store.vipHolder();
    if (known?.holder !== event.node) return;
    // Stamped in whole seconds: one stamped before the second the record was written belongs to
    // an earlier transition that arrived late.
    if (event.at < Math.floor(known.at / 1000) * 1000) return;
    const others = this.deps.config.nodes.filter((n) => n.holdsVip && n.name !== event.node);
    const [other] = others;
    if (other === undefined || others.length > 1) return;
    await this.moved({
      to: other.name,
      at: event.at,
      source: `keepalived: ${event.node} went BACKUP`,
      receivedAt: event.receivedAt,
    });
  }

  async onVipEvent(event: VipEvent): Promise<void> {
    // What the leader's watcher confirmed, for any replica handling a hook (see moved).
    const watched =
      event.kind === 'holder-changed'
        ? event.to
        : event.kind === 'recovered'
          ? event.holder
          : event.kind === 'no-holder' || event.kind === 'split-brain'
            ? null
            : undefined;
    if (watched !== undefined) await this.deps.store.setWatchedVipHolder(watched, this.deps.now());
    switch (event.kind) {
      case 'holder-changed': {
        await this.moved({ reportedFrom: event.from, to: event.to, at: event.at, source: 'VIP watcher' });
        return;
      }
      case 'recovered': {
        // Back after no holder or split brain: a move if the holder differs from the one on
        // record (said once: a hook may have said it already), else the VIP came back where it
        // was. A move the watcher saw (from another single holder) is never a "back".
        const said = await this.moved({
          reportedFrom: event.previousHolder,
          to: event.holder,
          at: event.at,
          source: 'VIP watcher',
        });
        const sameHolder = event.previousHolder === undefined || event.previousHolder === event.holder;
        if (said === 'nothing' && sameHolder) await this.recovery(event.holder, event.at);
        return;
      }
      case 'no-holder':
      case 'split-brain': {
        const { config, incidents, presenter } = this.deps;
        const what =
          event.kind === 'split-brain'
            ? `VIP held by ${event.holders.join(' and ')} at once`
            : `nobody holds the VIP ${config.vip.address}`;
        if (await this.planned(what)) return;
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
        void this.diagnose(record.id);
        return;
      }
      default:
        this.log.info({ kind: event.kind, detail: event.detail }, 'VIP HTTP change');
    }
  }

  /**
   * The VIP is on `to`: compared with the holder on record in one store transaction (the write
   * lock makes it one at a time across replicas), which records `to` and says the move: "VIP
   * moved from pi-a to pi-b at 03:12:07 (keepalived)" at once (urgent: ahead of the channel's
   * queue), then, once the VIP has settled, why it moved (failover.cause); a move back onto the
   * frontend is said in the open failover threads, which then resolve. Whoever tells of the same
   * move next (another replica's hook, the watcher, a new leader's first look) finds it on record
   * and says nothing. The record keeps when it was written (this replica's clock). A store
   * failure rolls everything back: the retry (inbox, next poll) sees the same move.
   */
  private async moved(report: MoveReport): Promise<'moved' | 'back' | 'nothing'> {
    const { to, at, source, seenSince } = report;
    const receivedAt = report.receivedAt ?? this.deps.now();
    const { store, config } = this.deps;
    const frontend = config.nodes.find((n) => n.roles.includes('frontend'))?.name;
    // Taken now: the bot's own action may have finished by the time the VIP has settled.
    const running = to === frontend ? [] : await this.deps.runningActions();
    const told = await store.atomically(async () => {
      const onRecord = await store.vipHolder();
      let from = onRecord?.holder ?? report.reportedFrom;
      if (onRecord?.holder === to) {
        // A MASTER hook for the holder on record: another instance's report of that move, or
        // the VIP went elsewhere meanwhile unseen (a node cut off never leaves MASTER, so its
        // return sent no hook), to where the leader's watcher last saw it. The instance that
        // told the record becoming MASTER again must have left it in between.
        if (report.transition === undefined) return undefined;
        const again =
          onRecord.reporter === report.transition || receivedAt - onRecord.at >= SAME_TRANSITION_MS;
        const watched = again ? await store.watchedVipHolder() : undefined;
        if (watched?.holder == null || watched.holder === to) return undefined;
        from = watched.holder;
      }
      if (onRecord !== undefined && seenSince !== undefined && onRecord.at >= seenSince) return undefined;
      await store.setVipHolder(to, this.deps.now(), report.transition ?? null);
      if (from === undefined || from === to) {
        this.log.info({ node: to, source }, 'VIP holder learned');
        return undefined;
      }
      // A failover drill's move is planned: said in the drill's thread, no incident.
      if (await this.planned(`VIP moved from ${from} to ${to} (${source})`)) return undefined;
      if (to === frontend) return { kind: 'back' as const, resolve: await this.recoveryNotices(to, at) };
      const record = await this.announceFailover(from, to, at, source, receivedAt);
      return { kind: 'moved' as const, record, from };
    });
    if (told === undefined) return 'nothing';
    if (told.kind === 'back') {
      for (const id of told.resolve) this.deps.track(this.deps.incidents.resolve(id, 'vip-back', to));
      return 'back';
    }
    this.deps.track(this.explainFailover(told.record.id, told.from, to, running));
    return 'moved';
  }

  /** Inside moved's transaction. */
  private async announceFailover(
    from: string,
    to: string,
    at: number,
    source: string,
    receivedAt: number,
  ): Promise<{ readonly id: number }> {
    const { store, incidents, presenter } = this.deps;
    const { record } = await incidents.open({
      key: incidentKeys.failover(from),
      number: '4',
      title: `VIP failover from ${from}`,
      requester: BOT_REQUESTER,
    });
    // Urgent: the notice skips the channel's paced queue (it must not wait behind a storm).
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
    return record;
  }

  /** True when a drill planned this VIP event (then said in its thread, and no incident opens). */
  private async planned(text: string): Promise<boolean> {
    return (await this.deps.plannedMove?.(text)) === true;
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
    const ids = await this.deps.store.atomically(() => this.recoveryNotices(holder, at));
    for (const id of ids) this.deps.track(this.deps.incidents.resolve(id, 'vip-back', holder));
  }

  /** The "back" notices (store work only, in the caller's transaction); the incidents to resolve. */
  private async recoveryNotices(holder: string, at: number): Promise<number[]> {
    const { store, incidents, presenter } = this.deps;
    const ids: number[] = [];
    for (const record of await store.openIncidents()) {
      if (!mayResolve(record.key, 'vip-back')) continue;
      await incidents.post(record, presenter.vipNotice({ kind: 'back', holder, at }));
      await store.appendTimeline({
        incidentId: record.id,
        at,
        kind: 'notice',
        text: `VIP back on ${holder}`,
      });
      ids.push(record.id);
    }
    return ids;
  }
}
