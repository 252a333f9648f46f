import { z } from 'zod';
import type { LoadedConfig } from '../config/load-config.js';
import type { Diagnostics } from '../diagnostics/diagnose.js';
import { APPROVE_PREFIX, REJECT_PREFIX } from '../domain/action-ids.js';
import { type ApprovalEvent, decide } from '../domain/approval.js';
import {
  type Drill,
  type DrillFigures,
  type DrillKind,
  type DrillOutcome,
  describeFigures,
  drillActions,
  drillRefusal,
  FAILOVER_DRILL_MIN_APPROVALS,
  finishDrill,
  isActive,
  measured,
  measureMove,
  moveVerdict,
  newDrill,
  RUNBOOK_FAILOVER_MS,
  restored,
  restoring,
  runbookVerdict,
  seconds,
  startDrill,
  startupAction,
  stopSent,
  type Transition,
  type VipSample,
  withApproval,
  withMessages,
} from '../domain/drill.js';
import { actionVerification } from '../domain/runbook.js';
import { asOkomeError, ErrorCode, OkomeError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Outbox } from '../outbox/outbox.js';
import type { HttpProbe, NodeShell, RedisProbe } from '../probes/ports.js';
import type { Store } from '../store/store-port.js';
import { approvalIdSchema } from './approval-id.js';
import { type ApprovalPresenter, cardInfoOf } from './approval-presenter.js';
import type { ClickInput } from './approvals-service.js';
import { executePlan, type VerifyResult } from './execute.js';
import { type ActionPlan, pinnedCommands, planAction } from './plan.js';
import { requestApproval } from './request-approval.js';
import { authorizeApprover, type CachedUsergroupDirectory } from './usergroup-directory.js';

/**
 * Drills (`/okome drill failover|redis`): the runbook's promises measured on purpose. A drill is
 * approved like a catalogue action (the approval state machine and the approvers' policy), is
 * refused over an open incident, stores each step before the next command goes out, and always
 * ends with the stopped service started again, or says loudly that it could not: at the end
 * of the run, or at the next start-up after a crash.
 */

export interface DrillDeps {
  readonly config: LoadedConfig;
  readonly store: Store;
  readonly outbox: Outbox;
  readonly diagnostics: Diagnostics;
  readonly shell: NodeShell;
  readonly http: HttpProbe;
  readonly redis: RedisProbe;
  readonly directory: CachedUsergroupDirectory;
  readonly presenter: ApprovalPresenter;
  readonly logger: Logger;
  readonly now: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** The VIP is requested this often while it moves (the issue's 100 ms). */
  readonly probeIntervalMs?: number;
  /** How long the VIP may take to move (away, or back) before the drill stops waiting. */
  readonly moveTimeoutMs?: number;
  /** How long the redis drill waits for a status run to see incident 2. */
  readonly detectTimeoutMs?: number;
}

export type DrillReply = {
  readonly reply: { text: string } | undefined;
  readonly later: (() => Promise<void>) | undefined;
};

const clickSchema = z.object({ verb: z.enum(['approve', 'reject']), id: approvalIdSchema });
/** Answers in a row from the new holder before a move counts (a flapping VIP is no move). */
const STEADY_PROBES = 5;
const PROBE_TIMEOUT_MS = 1000;
/** A restore that fails is sent again this many times in all, this far apart. */
const RESTORE_ATTEMPTS = 3;
const RESTORE_RETRY_MS = 2000;

export class DrillService {
  private readonly log: Logger;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly runs = new Set<Promise<void>>();
  /** Ids of the drills this process is running (replicas: the others' are not ours to restore). */
  private readonly running = new Set<number>();

  constructor(private readonly deps: DrillDeps) {
    this.log = deps.logger.child({ component: 'drills' });
    this.sleep = deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** The failover drill in progress, if any: its VIP moves are planned, not incidents. */
  async activeFailover(): Promise<Drill | undefined> {
    return (await this.deps.store.unfinishedDrills()).find((d) => d.kind === 'failover' && isActive(d));
  }

  /** Says a planned VIP move in the drill's thread (the failover code calls it instead of opening an incident). */
  async notePlanned(drill: Drill, text: string): Promise<void> {
    await this.say(
      drill,
      `:information_source: ${text} — *planned*: failover drill ${drill.id}, no incident opened.`,
    );
  }

  // ── request ──────────────────────────────────────────────────────────────────────────

  /** `/okome drill <kind>`: refused at once over an open incident; else the card, after the ack. */
  async request(kind: DrillKind, requester: string, channel: string): Promise<DrillReply> {
    const refusal = await this.refusal();
    if (refusal !== undefined) return { reply: { text: `Drill refused: ${refusal}.` }, later: undefined };
    return { reply: undefined, later: () => this.offer(kind, requester, channel) };
  }

  private async refusal(): Promise<string | undefined> {
    const { store } = this.deps;
    const [open, drills] = await Promise.all([store.openIncidents(), store.unfinishedDrills()]);
    return drillRefusal({ openIncidents: open, activeDrills: drills.filter(isActive) });
  }

  private async offer(kind: DrillKind, requester: string, channel: string): Promise<void> {
    const { config, store, outbox, presenter, now } = this.deps;
    const node = await this.targetNode(kind);
    const stop = node === undefined ? undefined : this.plan(drillActions[kind].stop, node);
    const restore = node === undefined ? undefined : this.plan(drillActions[kind].restore, node);
    // Dry-run shows commands and runs none: a drill would measure nothing.
    const dryRun = config.remediation.dryRun || (stop?.ok === true && stop.plan.dryRun);
    if (node === undefined || !stop?.ok || !restore?.ok || dryRun) {
      const why = dryRun
        ? `${drillActions[kind].stop} is dry-run (remediation.dryRun or its dryRun): a drill needs its commands to run`
        : node === undefined
          ? kind === 'failover'
            ? 'no single node holds the VIP now (run `/okome status`)'
            : 'no backend node runs redis-server'
          : [stop, restore].flatMap((p) => (p?.ok === false ? [p.reason] : [])).join('; ');
      await outbox.enqueueEphemeral({
        channel,
        user: requester,
        payload: {
          text: `Drill refused: ${presenter.outside(why)}. The drills run ${drillActions[kind].stop} and ${drillActions[kind].restore} from the action catalogue (see config/okome.example.yml).`,
        },
      });
      return;
    }
    const plan: ActionPlan = {
      ...stop.plan,
      requiredApprovals: Math.max(
        stop.plan.requiredApprovals,
        kind === 'failover' ? FAILOVER_DRILL_MIN_APPROVALS : 1,
      ),
    };
    const approval = {
      ...requestApproval(plan, { incidentId: 0, requester, now: now(), ttlMs: config.slack.approvalTtlMs }),
      // The card pins both: what stops the service and what starts it again.
      commands: [...pinnedCommands(stop.plan), ...pinnedCommands(restore.plan)],
      why: `${kind} drill: measures the runbook's ${kind === 'failover' ? `"cold spare claims the VIP in about ${seconds(RUNBOOK_FAILOVER_MS)}"` : 'Redis recovery (incident 2)'}, then ${restore.plan.label}`,
    };
    await store.atomically(async () => {
      const drill = await store.insertDrill(newDrill({ kind, requester, channel, approval, now: now() }));
      const rootRef = await outbox.enqueuePost({
        channel,
        payload: presenter.notice(
          `:stopwatch: *${kind === 'failover' ? 'Failover' : 'Redis'} drill ${drill.id}* (runbook incident ${drill.incidentNumber}) requested by ${presenter.mention(requester)}: ${presenter.outside(plan.label)}, measured, then ${presenter.outside(restore.plan.label)}. Needs ${plan.requiredApprovals} approval(s).`,
        ),
      });
      const info = { ...cardInfoOf(plan, false), details: [...stop.plan.details, ...restore.plan.details] };
      const cardRef = await outbox.enqueuePost({
        channel,
        threadRef: rootRef,
        payload: { ...presenter.card(approval, info, { buttons: true }), reply_broadcast: true },
      });
      await this.write(withMessages(drill, rootRef, cardRef), drill.version);
      await this.audit(
        drill,
        requester,
        'drill-request',
        'accepted',
        'requested',
        `${kind} drill on ${node}`,
      );
    });
  }

  /** The failover drill's node is the VIP holder now; the redis drill's the backend running redis-server. */
  private async targetNode(kind: DrillKind): Promise<string | undefined> {
    if (kind === 'redis')
      return this.deps.config.nodes.find(
        (n) => n.roles.includes('backend') && n.services.includes('redis-server'),
      )?.name;
    const report = await this.deps.diagnostics.run({ kind: 'check', target: 'vip-owner' });
    return report.vip.state.kind === 'single' ? report.vip.state.holder : undefined;
  }

  private plan(actionId: string, node: string) {
    return planAction({ actionId, nodes: [node] }, this.deps.config);
  }

  // ── clicks ───────────────────────────────────────────────────────────────────────────

  /** Whether an Approve/Reject button belongs to a drill's card. */
  async owns(actionId: string): Promise<boolean> {
    const id = actionId.startsWith(APPROVE_PREFIX)
      ? actionId.slice(APPROVE_PREFIX.length)
      : actionId.slice(REJECT_PREFIX.length);
    if (!approvalIdSchema.safeParse(id).success) return false;
    return (await this.deps.store.drillByApproval(id)) !== undefined;
  }

  async click(input: ClickInput): Promise<DrillReply> {
    const verb = input.actionId.startsWith(APPROVE_PREFIX) ? 'approve' : 'reject';
    const id = input.actionId.slice((verb === 'approve' ? APPROVE_PREFIX : REJECT_PREFIX).length);
    const parsed = clickSchema.safeParse({ verb, id });
    if (!parsed.success || parsed.data.id !== input.value)
      return { reply: { text: 'That button is not one of mine.' }, later: undefined };
    if (!(await this.deps.store.markSeen(`click:${input.triggerId}:${input.actionTs}`, this.deps.now())))
      return { reply: undefined, later: undefined };
    return { reply: undefined, later: () => this.decideClick(parsed.data.verb, parsed.data.id, input) };
  }

  private async decideClick(
    verb: 'approve' | 'reject',
    approvalId: string,
    input: ClickInput,
  ): Promise<void> {
    const { store, config, directory, now, presenter } = this.deps;
    const drill = await store.drillByApproval(approvalId);
    if (drill === undefined) return;
    // Only the card the bot posted decides anything (a forged or replayed payload does not).
    const card = drill.cardRef === null ? undefined : await store.message(drill.cardRef);
    if (card?.ts == null || card.channel !== input.channelId || card.ts !== input.messageTs) {
      await this.audit(
        drill,
        input.userId,
        `click-${verb}`,
        'refused',
        'not-from-card',
        'the click did not come from the drill card',
      );
      return;
    }
    const authorization = await authorizeApprover(input.userId, config.slack.approvers, directory);
    const event: ApprovalEvent =
      verb === 'approve'
        ? { kind: 'click-approve', user: input.userId, authorization }
        : { kind: 'click-reject', user: input.userId, authorization };
    const decision = decide(drill.approval, event, now(), { mention: presenter.mention });
    const next = decision.changed ? withApproval(drill, decision.next, now()) : drill;
    if (decision.changed && !(await store.compareAndSetDrill(next, drill.version))) {
      await this.deps.outbox.tellUser(input, 'The drill changed at the same moment; click again.');
      return;
    }
    await this.audit(drill, input.userId, `click-${verb}`, decision.verdict, decision.code, decision.reason);
    for (const effect of decision.effects) {
      if (effect.kind === 'ephemeral')
        await this.deps.outbox.tellUser({ ...input, userId: effect.user }, effect.text);
      if (effect.kind === 'update-card') await this.updateCard(next, effect.buttons);
    }
    if (decision.verdict === 'refused' && !decision.effects.some((e) => e.kind === 'ephemeral'))
      await this.deps.outbox.tellUser(input, decision.reason);
    if (next.phase === 'finished')
      await this.say(next, `Drill ${next.id} ended: ${presenter.outside(next.summary ?? '')}`);
    if (decision.effects.some((e) => e.kind === 'start-run')) await this.track(next.id, this.run(next));
  }

  private async updateCard(drill: Drill, buttons: boolean): Promise<void> {
    if (drill.cardRef === null) return;
    const stop = drill.node ?? drill.approval.targets[0] ?? '';
    const planned = this.plan(drillActions[drill.kind].stop, stop);
    const info = planned.ok
      ? cardInfoOf(planned.plan, false)
      : { label: drill.approval.actionId, risk: '?', details: [], notes: [], dryRun: false };
    await this.deps.outbox.enqueueUpdate({
      messageRef: drill.cardRef,
      payload: this.deps.presenter.card(drill.approval, info, { buttons }),
    });
  }

  private async track(id: number, run: Promise<void>): Promise<void> {
    this.runs.add(run);
    this.running.add(id);
    try {
      await run;
    } finally {
      this.runs.delete(run);
      this.running.delete(id);
    }
  }

  // ── the run ──────────────────────────────────────────────────────────────────────────

  /** Approved: refused over an incident opened meanwhile; else stop, measure, restore, report. */
  private async run(approved: Drill): Promise<void> {
    const { now } = this.deps;
    const node = approved.approval.targets[0];
    let refusal = await this.refusal();
    if (refusal === undefined && approved.kind === 'failover') {
      // The card pinned the holder of the time: the drill stops nobody else's keepalived.
      const holder = await this.holder();
      if (holder !== node)
        refusal = `the VIP moved since the drill was asked (held by ${holder ?? 'nobody'} now, not ${node})`;
    }
    if (refusal !== undefined || node === undefined) {
      await this.finish(approved, 'refused', `not run: ${refusal ?? 'no target node'}`);
      return;
    }
    const started = startDrill(
      approved,
      decide(approved.approval, { kind: 'start-run' }, now()).next,
      node,
      now(),
    );
    if (!started.ok || !(await this.deps.store.compareAndSetDrill(started.next, approved.version))) {
      await this.finish(approved, 'refused', 'not run: another drill is running');
      return;
    }
    let drill = started.next;
    await this.say(
      drill,
      `Drill ${drill.id} approved by ${drill.approval.approvers.map((a) => this.deps.presenter.mention(a.user)).join(', ')}: starting on ${node}.`,
    );
    try {
      drill = drill.kind === 'failover' ? await this.runFailover(drill) : await this.runRedis(drill);
    } catch (error) {
      const failure = asOkomeError(error);
      this.log.error({ err: failure, drill: drill.id }, 'drill failed');
      const latest = (await this.deps.store.drillById(drill.id)) ?? drill;
      await this.restoreAndEnd(
        latest,
        'failed',
        `the drill stopped on an error (${failure.code}: ${failure.message})`,
      );
    }
  }

  /** Stores the transition, or throws: nothing runs on a record another writer changed. */
  private async step(t: Transition, expected: number): Promise<Drill> {
    if (!t.ok) throw new OkomeError(ErrorCode.DrillConflict, t.reason);
    await this.write(t.next, expected);
    return t.next;
  }

  private async write(next: Drill, expected: number): Promise<void> {
    if (!(await this.deps.store.compareAndSetDrill(next, expected)))
      throw new OkomeError(ErrorCode.DrillConflict, `drill ${next.id} changed under this run`);
  }

  private async runFailover(running: Drill): Promise<Drill> {
    const { now } = this.deps;
    const node = running.node ?? '';
    const stop = this.requirePlan(drillActions.failover.stop, node);
    const probe = this.startProbing();
    try {
      const baseline = await probe.baseline();
      // Stored before the command: a crash from here on restores keepalived at start-up.
      let drill = await this.step(stopSent(running, now()), running.version);
      const stopAt = drill.stopSentAt ?? now();
      await this.runSteps(stop);
      await probe.until({ since: stopAt, from: baseline });
      // Requests still in flight (a hung one ends at its timeout) count too.
      await probe.settled();
      const away = measureMove(probe.samples, { since: stopAt, from: baseline });
      const holder = await this.holder();
      const figures: DrillFigures = {
        kind: 'failover',
        from: node,
        to: away.moveMs === null ? null : (holder ?? away.to),
        newHolderMs: away.moveMs,
        probes: away.probes,
        failedProbes: away.failed,
        backMs: null,
        failedProbesBack: 0,
        runbookMs: RUNBOOK_FAILOVER_MS,
      };
      drill = await this.step(restoring(drill, figures), drill.version);
      const startAt = now();
      await this.runSteps(this.requirePlan(drillActions.failover.restore, node));
      if (away.to !== null) await probe.until({ since: startAt, from: away.to, to: baseline });
      await probe.settled();
      const back =
        away.to === null
          ? undefined
          : measureMove(probe.samples, { since: startAt, from: away.to, to: baseline });
      const done: DrillFigures = {
        ...figures,
        backMs: back?.moveMs ?? null,
        failedProbesBack: back?.failed ?? 0,
      };
      drill = await this.step(measured(drill, done), drill.version);
      probe.stop();
      return await this.verifyAndEnd(drill, done);
    } finally {
      probe.stop();
    }
  }

  private async runRedis(running: Drill): Promise<Drill> {
    const { now, diagnostics } = this.deps;
    const node = running.node ?? '';
    const timeoutMs = this.deps.detectTimeoutMs ?? 60_000;
    let drill = await this.step(stopSent(running, now()), running.version);
    const stopAt = drill.stopSentAt ?? now();
    await this.runSteps(this.requirePlan(drillActions.redis.stop, node));
    // Detection as the bot does it: full status runs, until one names incident 2.
    let statusRuns = 0;
    let detectedAt: number | undefined;
    while (detectedAt === undefined && now() - stopAt < timeoutMs) {
      const report = await diagnostics.run({ kind: 'status' });
      statusRuns += 1;
      if (report.incidents.some((i) => i.number === drill.incidentNumber)) detectedAt = now();
    }
    const figures: DrillFigures = {
      kind: 'redis',
      node,
      detectionMs: detectedAt === undefined ? null : detectedAt - stopAt,
      statusRuns,
      recoveryMs: null,
      verified: false,
    };
    drill = await this.step(restoring(drill, figures), drill.version);
    // Recovery through the catalogue's restart-redis and its verification (the runbook's checks).
    const restartAt = now();
    const report = await this.execute(this.requirePlan(drillActions.redis.restore, node));
    const done: DrillFigures = {
      ...figures,
      verified: report.ok,
      recoveryMs: report.ok ? now() - restartAt : null,
    };
    drill = await this.step(measured(drill, done), drill.version);
    if (!report.ok)
      throw new OkomeError(ErrorCode.DrillConflict, `restart-redis did not verify: ${report.summary}`);
    return this.verifyAndEnd(drill, done);
  }

  /** The stopped service is back (checked, not assumed): then the figures, and the end. */
  private async verifyAndEnd(drill: Drill, figures: DrillFigures): Promise<Drill> {
    const check = await this.restoredCheck(drill);
    if (!check.ok) {
      return this.restoreAndEnd(drill, 'failed', `after the drill the checks still fail: ${check.details}`);
    }
    const back = await this.step(restored(drill, this.deps.now()), drill.version);
    const measured =
      figures.kind === 'failover'
        ? runbookVerdict(figures.newHolderMs) !== 'never'
        : figures.detectionMs !== null;
    const outcome: DrillOutcome = measured ? 'completed' : 'failed';
    const summary = describeFigures(figures);
    const ended = await this.finish(back, outcome, summary, figures);
    return ended ?? back;
  }

  /**
   * Whatever went wrong after the stop: start the service again (the drill's restore action),
   * check it, and end as `outcome` when it is back, as not-restored (said loudly) when not.
   */
  private async restoreAndEnd(drill: Drill, outcome: DrillOutcome, summary: string): Promise<Drill> {
    if (drill.phase === 'finished') return drill;
    if (drill.stopSentAt === null || drill.restoredAt !== null)
      return (await this.finish(drill, outcome, summary)) ?? drill;
    const node = drill.node ?? '';
    let problem: string | undefined;
    try {
      await this.restoreWithRetries(this.requirePlan(drillActions[drill.kind].restore, node));
      const check = await this.waitRestored(drill);
      if (!check.ok) problem = check.details;
    } catch (error) {
      problem = asOkomeError(error).message;
    }
    if (problem !== undefined) return this.notRestored(drill, `${summary}; then: ${problem}`);
    const back = await this.step(restored(drill, this.deps.now()), drill.version);
    return (
      (await this.finish(back, outcome, `${summary}; ${this.serviceOf(drill)} started again on ${node}`)) ??
      back
    );
  }

  /**
   * The restore's commands, tried again after a failure (starting a service twice is harmless):
   * a bot just restarted on a loaded machine may find its first SSH session slow to come up, and
   * a stopped service must not be left down for that. The last failure is the one reported.
   */
  private async restoreWithRetries(plan: ActionPlan): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.runSteps(plan);
        return;
      } catch (error) {
        if (attempt >= RESTORE_ATTEMPTS) throw error;
        this.log.warn({ err: error, attempt, action: plan.actionId }, 'drill restore failed; trying again');
        await this.sleep(RESTORE_RETRY_MS);
      }
    }
  }

  private serviceOf(drill: Drill): string {
    return drill.kind === 'failover' ? 'keepalived' : 'redis-server';
  }

  private async notRestored(drill: Drill, summary: string): Promise<Drill> {
    const node = drill.node ?? '?';
    const service = this.serviceOf(drill);
    const loud = `:rotating_light: <!here> Drill ${drill.id} could NOT restore ${service} on ${node}: ${this.deps.presenter.outside(summary)}. Run \`sudo systemctl start ${service}\` on ${node} now.`;
    this.log.error({ drill: drill.id, node, service, summary }, 'drill could not restore the service');
    const approval = decide(
      drill.approval,
      { kind: 'finish', result: 'failure', summary },
      this.deps.now(),
    ).next;
    const t = finishDrill({ ...drill, approval }, 'not-restored', summary, this.deps.now());
    if (t.ok && (await this.deps.store.compareAndSetDrill(t.next, drill.version)))
      await this.updateCard(t.next, false);
    await this.say(drill, loud, true);
    return t.ok ? t.next : drill;
  }

  private async finish(
    drill: Drill,
    outcome: DrillOutcome,
    summary: string,
    figures?: DrillFigures,
  ): Promise<Drill | undefined> {
    const { now } = this.deps;
    // The card ends as the run did: succeeded or failed (a refusal before the run: cancelled).
    const event: ApprovalEvent =
      drill.approval.state === 'running'
        ? { kind: 'finish', result: outcome === 'completed' ? 'success' : 'failure', summary }
        : { kind: 'cancel', reason: summary };
    const approval = decide(drill.approval, event, now()).next;
    const t = finishDrill({ ...drill, approval }, outcome, summary, now(), figures ?? drill.figures);
    if (!t.ok || !(await this.deps.store.compareAndSetDrill(t.next, drill.version))) return undefined;
    await this.updateCard(t.next, false);
    const icon =
      outcome === 'completed' ? ':white_check_mark:' : outcome === 'refused' ? ':no_entry:' : ':warning:';
    await this.say(
      t.next,
      `${icon} Drill ${drill.id} ${outcome}: ${this.deps.presenter.outside(summary)}`,
      true,
    );
    await this.audit(drill, 'bot', 'drill-finish', 'accepted', outcome, summary);
    return t.next;
  }

  /** The service the drill stopped is running again, and (failover) the VIP is back on its holder. */
  private async restoredCheck(drill: Drill): Promise<VerifyResult> {
    const node = drill.node ?? '';
    const checks =
      drill.kind === 'failover'
        ? ['service', 'vip-owner']
        : [...(actionVerification['restart-redis'] ?? ['redis-ping']), 'service'];
    const report = await this.deps.diagnostics.run({ kind: 'checks', checks, nodes: [node] });
    const bad = report.checks.filter((c) => c.status !== 'ok' && c.status !== 'warn');
    const vipBack =
      drill.kind !== 'failover' || (report.vip.state.kind === 'single' && report.vip.state.holder === node);
    const details = [
      ...bad.map((c) => `${c.id}: ${c.summary}`),
      ...(vipBack ? [] : [`the VIP is not back on ${node}`]),
    ].join('; ');
    return { ok: report.checks.length > 0 && bad.length === 0 && vipBack, details };
  }

  private async waitRestored(drill: Drill): Promise<VerifyResult> {
    const deadline = this.deps.now() + (this.deps.moveTimeoutMs ?? 30_000);
    for (;;) {
      const check = await this.restoredCheck(drill);
      if (check.ok || this.deps.now() >= deadline) return check;
      await this.sleep(1000);
    }
  }

  private async holder(): Promise<string | undefined> {
    const report = await this.deps.diagnostics.run({ kind: 'check', target: 'vip-owner' });
    return report.vip.state.kind === 'single' ? report.vip.state.holder : undefined;
  }

  private requirePlan(actionId: string, node: string): ActionPlan {
    const planned = this.plan(actionId, node);
    if (!planned.ok) throw new OkomeError(ErrorCode.PlanRefused, planned.reason, { userSafe: true });
    return planned.plan;
  }

  /** The plan's commands, no verification (the drill measures and checks itself). */
  private async runSteps(plan: ActionPlan): Promise<void> {
    const report = await this.execute({ ...plan, verify: { checks: [], windowMs: 0 } });
    if (!report.ok)
      throw new OkomeError(ErrorCode.PlanRefused, `${plan.label}: ${report.summary}`, { userSafe: true });
  }

  private execute(plan: ActionPlan) {
    const { config, shell, redis, now } = this.deps;
    const withChecks =
      plan.verify.checks.length > 0 || plan.verify.windowMs === 0
        ? plan
        : { ...plan, verify: { ...plan.verify, checks: actionVerification[plan.actionId] ?? [] } };
    return executePlan(withChecks, {
      shell,
      redis,
      verify: (checks, nodes) => this.verify(checks, nodes),
      now,
      sleep: this.sleep,
      stepTimeoutMs: config.remediation.stepTimeoutMs,
      redisTimeoutMs: config.timeouts.redisMs,
      dryRun: config.remediation.dryRun,
    });
  }

  private async verify(checks: readonly string[], nodes: readonly string[]): Promise<VerifyResult> {
    if (checks.length === 0) return { ok: true, details: 'no checks' };
    const report = await this.deps.diagnostics.run({ kind: 'checks', checks, nodes });
    const bad = report.checks.filter((c) => c.status !== 'ok');
    return {
      ok: report.checks.length > 0 && bad.length === 0,
      details: report.checks.map((c) => `${c.status} ${c.id}: ${c.summary}`).join('\n'),
      results: report.checks.map((c) => ({ id: c.id, status: c.status, summary: c.summary })),
    };
  }

  /** Requests to the VIP every probeIntervalMs, each on its own (a hung one never delays the next). */
  private startProbing() {
    const { config, http, now } = this.deps;
    const interval = this.deps.probeIntervalMs ?? 100;
    const url = `http://${config.vip.address}:${config.vip.httpPort}/`;
    const samples: VipSample[] = [];
    const pending = new Set<Promise<void>>();
    const fire = () => {
      const sentAt = now();
      const p = http
        .request({ url, method: 'HEAD', timeoutMs: PROBE_TIMEOUT_MS })
        .then(
          (r) => ({ ok: r.status < 500, servedBy: r.headers['x-okome-node'] }),
          () => ({ ok: false, servedBy: undefined }),
        )
        .then((r) => {
          samples.push({ sentAt, doneAt: now(), ok: r.ok, servedBy: r.servedBy });
        });
      pending.add(p);
      void p.finally(() => pending.delete(p));
    };
    fire();
    const timer = setInterval(fire, interval);
    const timeoutMs = this.deps.moveTimeoutMs ?? 30_000;
    let stopped = false;
    return {
      samples,
      stop: () => {
        if (stopped) return;
        stopped = true;
        clearInterval(timer);
      },
      settled: async (): Promise<void> => {
        await Promise.allSettled([...pending]);
      },
      /** Who answers on the VIP before the drill: the first answer's X-OKOME-Node. */
      baseline: async (): Promise<string | undefined> => {
        const deadline = now() + 5000;
        while (now() < deadline) {
          const answered = samples.find((s) => s.ok);
          if (answered !== undefined) return answered.servedBy;
          await this.sleep(interval);
        }
        throw new OkomeError(
          ErrorCode.ProbeFailed,
          `the VIP (${url}) does not answer: no drill on a VIP that is down`,
          { userSafe: true },
        );
      },
      until: async (input: {
        since: number;
        from: string | undefined;
        to?: string | undefined;
      }): Promise<void> => {
        for (;;) {
          const verdict = moveVerdict(samples, input, now(), { timeoutMs, steadyProbes: STEADY_PROBES });
          if (verdict !== 'waiting') return;
          await this.sleep(interval);
        }
      },
    };
  }

  /** Periodic: drills whose approval expired lose their buttons and end. */
  async expire(): Promise<number> {
    const { store, now } = this.deps;
    let expired = 0;
    for (const drill of await store.unfinishedDrills()) {
      if (drill.phase !== 'awaiting-approval' || drill.approval.expiresAt > now()) continue;
      const decision = decide(drill.approval, { kind: 'expire' }, now());
      if (!decision.changed) continue;
      const next = withApproval(drill, decision.next, now());
      if (!(await store.compareAndSetDrill(next, drill.version))) continue;
      await this.updateCard(next, false);
      await this.say(next, `Drill ${next.id} expired without its approvals; nothing ran.`);
      expired += 1;
    }
    return expired;
  }

  // ── start-up ─────────────────────────────────────────────────────────────────────────

  /**
   * Start-up (replicas: the leader's sweep, for drills older than `startedBeforeMs`, which no
   * live replica can still be running): a drill a crash left running owes its restore. The restore action runs now; the
   * thread says it (or says loudly that it could not). A drill that stopped nothing just ends.
   */
  async recover(options: { readonly startedBeforeMs?: number } = {}): Promise<number> {
    const before = options.startedBeforeMs;
    const unfinished = (await this.deps.store.unfinishedDrills()).filter(
      (d) =>
        isActive(d) &&
        !this.running.has(d.id) &&
        (before === undefined || (d.startedAt ?? d.requestedAt) < this.deps.now() - before),
    );
    for (const drill of unfinished) {
      const action = startupAction(drill);
      this.log.warn({ drill: drill.id, action: action.kind }, 'unfinished drill found at start-up');
      if (action.kind === 'end') await this.finish(drill, 'interrupted', action.summary);
      if (action.kind === 'restore')
        await this.restoreAndEnd(drill, 'interrupted', `the bot restarted mid-drill (${drill.phase})`).catch(
          (error: unknown) => this.notRestored(drill, asOkomeError(error).message),
        );
    }
    return unfinished.length;
  }

  /** Shutdown: drills in progress finish (restore included) before the store closes. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.runs]);
  }

  // ── chat and audit ───────────────────────────────────────────────────────────────────

  private async say(drill: Drill, text: string, broadcast = false): Promise<void> {
    const { outbox, presenter } = this.deps;
    const fresh = drill.rootRef === null ? await this.deps.store.drillById(drill.id) : drill;
    const root = fresh?.rootRef ?? null;
    await outbox.enqueuePost({
      channel: drill.channel,
      ...(root === null ? {} : { threadRef: root }),
      payload: {
        ...presenter.notice(text),
        ...(broadcast && root !== null ? { reply_broadcast: true } : {}),
      },
    });
  }

  private async audit(
    drill: Drill,
    actor: string,
    event: string,
    verdict: 'accepted' | 'refused',
    code: string,
    reason: string,
  ): Promise<void> {
    await this.deps.store.appendAudit({
      at: this.deps.now(),
      approvalId: drill.approval.id,
      incidentId: null,
      actionId: drill.approval.actionId,
      actor,
      event,
      verdict,
      code,
      reason: `drill ${drill.id}: ${reason}`.slice(0, 2000),
      stateBefore: drill.phase,
      stateAfter: null,
      targets: [...drill.approval.targets],
      commands: drill.approval.commands.map((c) => `${c.node}: ${c.command}`),
    });
  }
}
