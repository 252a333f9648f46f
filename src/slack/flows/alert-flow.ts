import { incidentForAlert } from '../../alerts/alert-config.js';
import type { AlertBatch } from '../../alerts/alertmanager.js';
import type { KeepalivedEvent } from '../../alerts/keepalived-hook.js';
import type { VipEvent } from '../../alerts/vip-watcher.js';
import type { LoadedConfig } from '../../config/load-config.js';
import type { Diagnostics } from '../../diagnostics/diagnose.js';
import { BOT_REQUESTER } from '../../domain/approval.js';
import { runbook } from '../../domain/runbook.js';
import type { Logger } from '../../logger.js';
import type { Outbox } from '../../outbox/outbox.js';
import type { Incident as IncidentRow, Store } from '../../store/store-port.js';
import { escapeText } from '../render/mrkdwn.js';
import type { StatusFlow } from './status-flow.js';

/**
 * Incidents that open themselves: Alertmanager alerts and VIP moves (keepalived's hook, or the
 * watcher as a fallback) open or join the incident for their key, post one short message with
 * a thread, and run the diagnosis there, which offers the runbook's actions as for a status.
 * Repeats update one summary message instead of posting again.
 */

export interface AlertFlowDeps {
  readonly config: LoadedConfig;
  readonly store: Store;
  readonly outbox: Outbox;
  readonly diagnostics: Diagnostics;
  readonly status: StatusFlow;
  readonly logger: Logger;
  readonly now: () => number;
  /** Work started from a webhook: tracked so a shutdown waits for it. */
  readonly track: (work: Promise<void>) => void;
}

interface Delivery {
  readonly repeated: readonly { readonly fingerprint: string; readonly status: string }[];
  readonly receivedAt: number;
}

const time = (ms: number) => new Date(ms).toISOString().slice(11, 19);
const INCIDENT_4_LINE =
  'Runbook, incident 4: nothing immediately — the spare serves. Reflash the dead Pi with the golden image; check the SD card and the power supply.';

export class AlertFlow {
  private readonly log: Logger;
  /** Incidents with a diagnosis queued or running: alert storms must not start one per alert. */
  private readonly diagnosing = new Map<number, { again: boolean }>();
  /** The VIP holder as last seen (hook or watcher), for "moved from X to Y". */
  private holder: string | undefined;
  /** The failover notices posted recently (from→to), so hook and watcher do not both post. */
  private readonly noticed = new Map<string, number>();

  constructor(private readonly deps: AlertFlowDeps) {
    this.log = deps.logger.child({ component: 'alerts' });
  }

  // ── Alertmanager ────────────────────────────────────────────────────────────────────────

  onAlerts(batch: AlertBatch, delivery: Delivery): void {
    const { store, config, now } = this.deps;
    const touched = new Set<number>();
    for (const alert of batch.alerts) {
      const labels = { ...batch.commonLabels, ...alert.labels };
      const alertname = labels.alertname ?? 'unnamed';
      const mapped = incidentForAlert(labels, config.alerts.mapping, config.nodes);
      const node = mapped?.node ?? null;
      const key =
        mapped === undefined
          ? `alert:${alertname}`
          : node === null
            ? mapped.incident
            : `${mapped.incident}:${node}`;
      const title = mapped === undefined ? `Alert ${alertname}` : runbook[mapped.incident].title;
      const { incident, created } = store.openOrReuseIncident({
        key,
        number: mapped?.incident ?? 'alert',
        title,
        channel: config.slack.incidentChannel,
        requester: BOT_REQUESTER,
        now: now(),
      });
      const { alert: row, statusChanged } = store.recordAlert({
        incidentId: incident.id,
        fingerprint: alert.fingerprint,
        alertname,
        node,
        status: alert.status,
        at: delivery.receivedAt,
      });
      store.appendTimeline({
        incidentId: incident.id,
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
      const root =
        created || incident.rootRef === null
          ? this.openThread(
              incident,
              `:bell: *${escapeText(title)}*${node === null ? '' : ` (${node})`} — opened by the alert \`${escapeText(alertname)}\``,
            )
          : incident.rootRef;
      if (alert.status === 'resolved' && (statusChanged || row.count === 1)) {
        this.deps.outbox.enqueuePost({
          channel: incident.channel,
          threadRef: root,
          payload: {
            text: `:white_check_mark: ${alertname}${node === null ? '' : ` on ${node}`} resolved at ${time(delivery.receivedAt)}`,
          },
        });
      }
      touched.add(incident.id);
      if (created) this.diagnose(incident.id);
    }
    for (const r of delivery.repeated) {
      const incidentId = store.incidentOfAlert(r.fingerprint);
      if (incidentId !== undefined && store.touchAlert(incidentId, r.fingerprint, delivery.receivedAt))
        touched.add(incidentId);
    }
    for (const id of touched) {
      this.updateSummary(id);
      const alerts = store.incidentAlerts(id);
      // Every alert of the incident resolved: a diagnosis decides whether it is over.
      if (alerts.length > 0 && alerts.every((a) => a.status === 'resolved')) this.diagnose(id);
    }
  }

  private openThread(incident: IncidentRow, text: string): string {
    const ref = this.deps.outbox.enqueuePost({ channel: incident.channel, payload: { text } });
    this.deps.store.setIncidentRootRef(incident.id, ref);
    return ref;
  }

  /** One message per incident: every alert with its count and first/last seen. */
  private updateSummary(incidentId: number): void {
    const { store, outbox } = this.deps;
    const incident = store.incidentById(incidentId);
    if (incident?.rootRef == null) return;
    const lines = store
      .incidentAlerts(incidentId)
      .map(
        (a) =>
          `${a.status === 'firing' ? ':fire:' : ':white_check_mark:'} \`${escapeText(a.alertname)}\`${a.node === null ? '' : ` on ${a.node}`} ${a.status} ×${a.count} · first ${time(a.firstSeen)} · last ${time(a.lastSeen)}`,
      );
    const payload = {
      text: `Alerts (${lines.length})\n${lines.slice(0, 40).join('\n')}${lines.length > 40 ? `\n…and ${lines.length - 40} more` : ''}`,
    };
    const ref = store.summaryRef(incidentId);
    if (ref === undefined) {
      store.setSummaryRef(
        incidentId,
        outbox.enqueuePost({ channel: incident.channel, threadRef: incident.rootRef, payload }),
      );
    } else {
      outbox.enqueueUpdate({ messageRef: ref, payload });
    }
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
          const incident = this.deps.store.incidentById(incidentId);
          if (incident?.rootRef == null || incident.status !== 'open') return;
          await this.deps.status.run({
            scope: { kind: 'status' },
            channel: incident.channel,
            requester: BOT_REQUESTER,
            threadRef: incident.rootRef,
          });
          this.resolveIfQuiet(incidentId);
        } while (state.again);
      } finally {
        this.diagnosing.delete(incidentId);
      }
    };
    this.deps.track(loop());
  }

  /** Incidents opened by alerts alone: resolved once every alert is resolved and a diagnosis ran. */
  private resolveIfQuiet(incidentId: number): void {
    const { store, outbox, now } = this.deps;
    const incident = store.incidentById(incidentId);
    if (incident === undefined || incident.status !== 'open' || incident.rootRef === null) return;
    const alerts = store.incidentAlerts(incidentId);
    if (
      alerts.length === 0 ||
      alerts.some((a) => a.status === 'firing') ||
      !incident.key.startsWith('alert:')
    )
      return;
    const why = 'Every alert resolved and the diagnosis is done.';
    if (!store.resolveIncident(incidentId, now(), why)) return;
    store.appendTimeline({ incidentId, at: now(), kind: 'resolved', text: why });
    outbox.enqueuePost({
      channel: incident.channel,
      threadRef: incident.rootRef,
      payload: { text: `:large_green_circle: Resolved: ${why}` },
    });
  }

  // ── VIP ─────────────────────────────────────────────────────────────────────────────────

  /** The watcher's first look: who holds the VIP now (no notice for a healthy baseline). */
  setHolder(holder: string | undefined): void {
    this.holder = holder;
  }

  onKeepalived(event: KeepalivedEvent): void {
    if (event.state !== 'MASTER') {
      this.log.info({ node: event.node, state: event.state }, 'keepalived transition');
      return;
    }
    const from = this.holder;
    this.holder = event.node;
    if (from !== undefined && from !== event.node)
      this.failover(from, event.node, event.at, 'keepalived', event.receivedAt);
    else if (from === undefined) this.log.info({ node: event.node }, 'VIP holder learned from keepalived');
  }

  onVipEvent(event: VipEvent): void {
    switch (event.kind) {
      case 'holder-changed': {
        this.holder = event.to;
        this.failover(event.from, event.to, event.at, 'VIP watcher');
        return;
      }
      case 'recovered': {
        const from = event.previousHolder ?? this.holder;
        this.holder = event.holder;
        if (from !== undefined && from !== event.holder)
          this.failover(from, event.holder, event.at, 'VIP watcher');
        else this.recovery(event.holder, event.at);
        return;
      }
      case 'no-holder':
      case 'split-brain': {
        const vipNodes = this.deps.config.nodes.filter((n) => n.holdsVip).map((n) => n.name);
        const split = event.kind === 'split-brain';
        const { incident, created } = this.deps.store.openOrReuseIncident({
          key: `3:${[...vipNodes].sort().join(',')}`,
          number: '3',
          title: split ? 'VIP split brain' : runbook['3'].title,
          channel: this.deps.config.slack.incidentChannel,
          requester: BOT_REQUESTER,
          now: this.deps.now(),
        });
        const text = split
          ? `:rotating_light: *SPLIT BRAIN*: ${event.holders.join(' and ')} all hold the VIP ${this.deps.config.vip.address} (seen ${time(event.at)}). Clients may reach either Pi. Restart keepalived on both, one after the other.`
          : `:red_circle: *No node holds the VIP* ${this.deps.config.vip.address} (seen ${time(event.at)}${event.lastHolder === undefined ? '' : `; last holder ${event.lastHolder}`}).`;
        if (created || incident.rootRef === null) this.openThread(incident, text);
        else
          this.deps.outbox.enqueuePost({
            channel: incident.channel,
            threadRef: incident.rootRef,
            payload: { text },
          });
        this.deps.store.appendTimeline({
          incidentId: incident.id,
          at: event.at,
          kind: 'notice',
          text: text.replace(/[:*]/g, ''),
        });
        this.diagnose(incident.id);
        return;
      }
      default:
        this.log.info({ kind: event.kind, detail: event.detail }, 'VIP HTTP change');
    }
  }

  /** "VIP moved from pi-a to pi-b at 03:12:07 (keepalived)", and whether the old holder answers. */
  private failover(from: string, to: string, at: number, source: string, receivedAt = this.deps.now()): void {
    const { store, config, now } = this.deps;
    const seen = this.noticed.get(`${from}>${to}`);
    if (seen !== undefined && now() - seen < 30_000) return;
    this.noticed.set(`${from}>${to}`, now());
    const frontend = config.nodes.find((n) => n.roles.includes('frontend'))?.name;
    if (to === frontend) {
      this.recovery(to, at);
      return;
    }
    const { incident } = store.openOrReuseIncident({
      key: `failover:${from}`,
      number: '4',
      title: `VIP failover from ${from}`,
      channel: config.slack.incidentChannel,
      requester: BOT_REQUESTER,
      now: now(),
    });
    const text = `:arrows_counterclockwise: VIP moved from *${from}* to *${to}* at ${time(at)} (${source})`;
    const root = incident.rootRef === null ? this.openThread(incident, text) : incident.rootRef;
    if (incident.rootRef !== null)
      this.deps.outbox.enqueuePost({ channel: incident.channel, threadRef: root, payload: { text } });
    store.appendTimeline({
      incidentId: incident.id,
      at,
      kind: 'notice',
      text: `VIP moved from ${from} to ${to} (${source})`,
      data: { from, to, source, receivedAt, noticeRef: root },
    });
    this.deps.outbox.enqueuePost({
      channel: incident.channel,
      threadRef: root,
      payload: { text: INCIDENT_4_LINE },
    });
    this.deps.track(this.describeOldHolder(incident, from));
    this.diagnose(incident.id);
  }

  private async describeOldHolder(incident: IncidentRow, node: string): Promise<void> {
    const report = await this.deps.diagnostics.run({
      kind: 'checks',
      checks: ['ssh', 'node-http', 'chaos-flag'],
      nodes: [node],
    });
    const ssh = report.checks.find((c) => c.id === `ssh@${node}`);
    const http = report.checks.find((c) => c.id === `node-http@${node}`);
    const text = `${node} answers SSH: ${ssh?.status === 'ok' ? 'yes' : `no (${ssh?.summary ?? 'not checked'})`} · HTTP: ${http?.status === 'ok' ? 'yes' : `no (${http?.summary ?? 'not checked'})`}`;
    const root = this.deps.store.incidentById(incident.id)?.rootRef ?? incident.rootRef;
    if (root !== null)
      this.deps.outbox.enqueuePost({
        channel: incident.channel,
        threadRef: root,
        payload: { text: escapeText(text) },
      });
  }

  /** The VIP is back on the frontend: said in the failover thread, which then resolves. */
  private recovery(holder: string, at: number): void {
    const { store, outbox, now } = this.deps;
    for (const incident of store.openIncidents()) {
      if (!incident.key.startsWith('failover:') && !incident.key.startsWith('3:')) continue;
      const text = `:large_green_circle: VIP back on ${holder} at ${time(at)}.`;
      if (incident.rootRef !== null)
        outbox.enqueuePost({ channel: incident.channel, threadRef: incident.rootRef, payload: { text } });
      store.appendTimeline({ incidentId: incident.id, at, kind: 'notice', text: `VIP back on ${holder}` });
      if (store.resolveIncident(incident.id, now(), `VIP back on ${holder}`)) {
        store.appendTimeline({
          incidentId: incident.id,
          at: now(),
          kind: 'resolved',
          text: `VIP back on ${holder}`,
        });
      }
    }
  }
}
