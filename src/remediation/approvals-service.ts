import { z } from 'zod';
import type { LoadedConfig } from '../config/load-config.js';
import type { Diagnostics } from '../diagnostics/diagnose.js';
import { APPROVE_PREFIX, REJECT_PREFIX } from '../domain/action-ids.js';
import { type Approval, type ApprovalEvent, type Decision, decide } from '../domain/approval.js';
import type { Incident, ProposedAction } from '../domain/classify.js';
import { hitRatioSampleOf } from '../domain/hit-ratio-sample.js';
import { keyKind } from '../domain/incident.js';
import { readStoredReport } from '../domain/report.js';
import { actionVerification } from '../domain/runbook.js';
import { asOkomeError, type OkomeError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Outbox } from '../outbox/outbox.js';
import type { NodeShell, RedisProbe } from '../probes/ports.js';
import type { Incident as IncidentRecord, Store } from '../store/store-port.js';
import { approvalIdSchema } from './approval-id.js';
import { type ApprovalPresenter, type CardInfo, cardInfoOf } from './approval-presenter.js';
import { type AuditLog, applyApprovalEvent } from './approval-store.js';
import { type ExecutionReport, executePlan, type VerifyResult } from './execute.js';
import { type ActionPlan, commandsChanged, planAction, touchesVip } from './plan.js';
import { checkPrecondition } from './precondition.js';
import { requestApproval } from './request-approval.js';
import { authorizeApprover, type CachedUsergroupDirectory } from './usergroup-directory.js';

/**
 * The approvals service: offers the classified incident's actions as cards with
 * Approve/Reject buttons, decides every click through the approval state machine (compare-and-
 * set in the store, audited), and for the one decision that starts the run: re-checks the
 * precondition on a fresh full status, runs the pinned commands, verifies, and tells the thread.
 */

/** A button click as the chat adapter hands it over: ids only, validated here. */
export interface ClickInput {
  readonly actionId: string;
  readonly value: string;
  readonly userId: string;
  readonly channelId: string | undefined;
  readonly messageTs: string | undefined;
  readonly triggerId: string;
  readonly actionTs: string;
}

export interface ApprovalsDeps {
  readonly config: LoadedConfig;
  readonly store: Store;
  readonly outbox: Outbox;
  readonly diagnostics: Diagnostics;
  readonly shell: NodeShell;
  readonly redis: RedisProbe;
  readonly directory: CachedUsergroupDirectory;
  readonly presenter: ApprovalPresenter;
  readonly logger: Logger;
  readonly now: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * Replicas: a run not in this process may be running in another one, so the sweep ends a
   * running approval only once it is overdue (default false: one process, its runs are all here).
   */
  readonly sharedRuns?: boolean;
}

const clickSchema = z.object({ verb: z.enum(['approve', 'reject']), id: approvalIdSchema });

/** How far a run got, for recording its end whatever happened (see settleRun). */
interface RunProgress {
  /** The approval went running: commands may have run. */
  started: boolean;
  /** Its end (finish or cancel) is on record. */
  ended: boolean;
  report: ExecutionReport | undefined;
  error: OkomeError | undefined;
}

/** Attempts to record a run's end while the store fails, and the pause before the next. */
const SETTLE_ATTEMPTS = 4;
const SETTLE_RETRY_MS = 500;
/** Slack over a run's computed longest time before the sweep calls it stuck. */
const STUCK_GRACE_MS = 60_000;

export class ApprovalsService {
  private readonly log: Logger;
  private readonly audit: AuditLog;
  private readonly mention: (user: string) => string;
  /** Runs in progress in this process, so a resolve can wait for them to be recorded. */
  private readonly runs = new Map<string, { readonly incidentId: number; readonly done: Promise<void> }>();
  private readonly sleep: (ms: number) => Promise<void>;
  constructor(private readonly deps: ApprovalsDeps) {
    this.sleep = deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.mention = deps.presenter.mention;
    this.log = deps.logger.child({ component: 'remediation' });
    this.audit = {
      appendAudit: (e) =>
        deps.store.appendAudit({ ...e, targets: [...e.targets], commands: [...e.commands] }),
    };
  }

  /** After a diagnosis: one pending approval (and card) per proposed action, reused while it is pending. */
  async offer(row: IncidentRecord, incident: Incident, requester: string): Promise<void> {
    const rootRef = row.rootRef;
    if (rootRef === null) return;
    for (const proposed of incident.actions) {
      // One transaction per action, from the twin check to the card: two diagnoses of one
      // incident at once (a status and an alert's) must not both find none and offer two.
      await this.deps.store.atomically(() => this.offerOne(row, rootRef, proposed, requester));
    }
  }

  private async offerOne(
    row: IncidentRecord,
    rootRef: string,
    proposed: ProposedAction,
    requester: string,
  ): Promise<void> {
    const { store, outbox, config, now } = this.deps;
    // One live approval per action: a diagnosis while one is pending or running offers no twin.
    // Approved or running only counts while its run is in progress here (one serving process per
    // store): a run whose end the store failed to record blocks nothing until the sweep ends it.
    const live = await store.approvalsInStates(['pending', 'approved', 'running']);
    const same = live.find(
      (a) =>
        a.incidentId === row.id &&
        a.actionId === proposed.actionId &&
        sameNodes(a.targets, proposed.nodes) &&
        this.isLive(a),
    );
    if (same !== undefined && (same.state !== 'pending' || same.expiresAt > now())) return;
    // Two incidents, one fix (a failover explained by nginx stopped on the old holder, and the
    // NginxDown alert or a status naming incident 1 there): one card, in the thread that offered
    // it first; this thread says once where it is, so nobody approves the same restart twice.
    const twin = live.find(
      (a) =>
        a.incidentId !== row.id &&
        a.actionId === proposed.actionId &&
        sameNodes(a.targets, proposed.nodes) &&
        this.isLive(a) &&
        (a.state !== 'pending' || a.expiresAt > now()),
    );
    if (twin !== undefined) {
      const told = (await store.timeline(row.id)).some(
        (e) => e.kind === 'notice' && (e.data as { offeredIn?: unknown } | null)?.offeredIn === twin.id,
      );
      if (told) return;
      const other = await store.incidentById(twin.incidentId);
      await store.appendTimeline({
        incidentId: row.id,
        at: now(),
        kind: 'notice',
        text: `${proposed.actionId} on ${proposed.nodes.join(', ')} is offered in incident ${twin.incidentId}'s thread`,
        data: { offeredIn: twin.id },
      });
      await outbox.enqueuePost({
        channel: row.channel,
        threadRef: rootRef,
        payload: this.deps.presenter.offeredElsewhere(twin, {
          // A failover or an unmapped alert has no runbook number to name it by.
          name:
            other === undefined
              ? `incident ${twin.incidentId}`
              : keyKind(other.key) === 'diagnosis'
                ? `Incident ${other.number} — ${other.title}`
                : other.title,
        }),
      });
      return;
    }
    const planned = planAction(proposed, config);
    if (!planned.ok) {
      await outbox.enqueuePost({
        channel: row.channel,
        threadRef: rootRef,
        payload: this.deps.presenter.cannotOffer(proposed.actionId, planned.reason),
      });
      return;
    }
    const plan = this.withVerify(planned.plan);
    const approval = requestApproval(plan, {
      incidentId: row.id,
      requester,
      now: now(),
      ttlMs: config.slack.approvalTtlMs,
      ...(proposed.why === undefined ? {} : { why: proposed.why }),
    });
    // The approval, its audit line and its card commit together.
    await store.insertApproval(approval);
    await store.appendAudit({
      at: now(),
      approvalId: approval.id,
      incidentId: row.id,
      actionId: approval.actionId,
      actor: requester,
      event: 'offer',
      verdict: 'accepted',
      code: 'offered',
      reason: `offered ${plan.label}`,
      stateBefore: null,
      stateAfter: 'pending',
      targets: [...approval.targets],
      commands: approval.commands.map((c) => `${c.node}: ${c.command}`),
    });
    const ref = await outbox.enqueuePost({
      channel: row.channel,
      threadRef: rootRef,
      payload: {
        ...this.deps.presenter.card(approval, this.cardInfo(plan, approval), { buttons: true }),
        reply_broadcast: true,
      },
    });
    await store.setApprovalCardRef(approval.id, ref);
  }

  /** A button click: validated, deduplicated, then decided after the ack. */
  async click(input: ClickInput): Promise<{
    reply: { text: string } | undefined;
    later: (() => Promise<void>) | undefined;
  }> {
    const verb = input.actionId.startsWith(APPROVE_PREFIX)
      ? 'approve'
      : input.actionId.startsWith(REJECT_PREFIX)
        ? 'reject'
        : undefined;
    const id = input.actionId.slice((verb === 'approve' ? APPROVE_PREFIX : REJECT_PREFIX).length);
    const parsed = clickSchema.safeParse({ verb, id });
    if (!parsed.success || parsed.data.id !== input.value) {
      this.log.warn(
        { actionId: input.actionId.slice(0, 80), user: input.userId },
        'unknown or forged button ignored',
      );
      return { reply: { text: 'That button is not one of mine.' }, later: undefined };
    }
    // Redelivered envelopes and double deliveries carry the same trigger and action_ts.
    if (!(await this.deps.store.markSeen(`click:${input.triggerId}:${input.actionTs}`, this.deps.now()))) {
      return { reply: undefined, later: undefined };
    }
    return { reply: undefined, later: () => this.decideClick(parsed.data.verb, parsed.data.id, input) };
  }

  private async decideClick(verb: 'approve' | 'reject', id: string, input: ClickInput): Promise<void> {
    const { store, config, directory } = this.deps;
    const before = await store.approvalById(id);
    if (before === undefined) {
      await this.deps.outbox.tellUser(
        input,
        'This approval no longer exists. Run `/okome status` for a fresh diagnosis.',
      );
      return;
    }
    // A signed click is only as good as where it came from: the card the bot posted this
    // approval on. Any other channel or message (a forged or replayed payload) decides nothing.
    const card = await this.cardOf(id);
    if (card === undefined || card.channel !== input.channelId || card.ts !== input.messageTs) {
      await store.appendAudit({
        at: this.deps.now(),
        approvalId: id,
        incidentId: before.incidentId,
        actionId: before.actionId,
        actor: input.userId,
        event: verb === 'approve' ? 'click-approve' : 'click-reject',
        verdict: 'refused',
        code: 'not-from-card',
        reason: `the click came from ${String(input.channelId).slice(0, 32)}/${String(input.messageTs).slice(0, 32)}, not from the approval's card`,
        stateBefore: before.state,
        stateAfter: before.state,
        targets: [...before.targets],
        commands: before.commands.map((c) => `${c.node}: ${c.command}`),
      });
      this.log.warn({ approval: id, user: input.userId }, 'click not from the approval card ignored');
      return;
    }
    const authorization = await authorizeApprover(input.userId, config.slack.approvers, directory);
    const event: ApprovalEvent =
      verb === 'approve'
        ? { kind: 'click-approve', user: input.userId, authorization }
        : { kind: 'click-reject', user: input.userId, authorization };
    const decision = await this.apply(id, event);
    if (decision.verdict === 'refused' && !decision.effects.some((e) => e.kind === 'ephemeral')) {
      await this.deps.outbox.tellUser(input, decision.reason);
    }
    await this.carryOut(decision, input);
  }

  /** Where the approval's card is in Slack, once posted. */
  private async cardOf(id: string): Promise<{ channel: string; ts: string } | undefined> {
    const ref = await this.deps.store.approvalCardRef(id);
    const message = ref === undefined ? undefined : await this.deps.store.message(ref);
    return message?.ts == null ? undefined : { channel: message.channel, ts: message.ts };
  }

  private apply(id: string, event: ApprovalEvent): Promise<Decision> {
    const { store, now } = this.deps;
    return store.atomically(() =>
      applyApprovalEvent(store, id, event, now(), { mention: this.mention, audit: this.audit }),
    );
  }

  private async carryOut(
    decision: Decision,
    input?: { channelId: string | undefined; userId: string },
  ): Promise<void> {
    const approval = decision.next;
    for (const effect of decision.effects) {
      switch (effect.kind) {
        case 'ephemeral':
          if (input !== undefined)
            await this.deps.outbox.tellUser({ channelId: input.channelId, userId: effect.user }, effect.text);
          break;
        case 'update-card':
          await this.updateCard(approval, effect.buttons);
          break;
        case 'thread-notice':
          await this.threadNotice(approval, effect.text);
          break;
        case 'start-run':
          await this.track(approval, this.run(approval));
          break;
      }
    }
  }

  private incidentOf(approval: Approval): Promise<IncidentRecord | undefined> {
    return this.deps.store.incidentById(approval.incidentId);
  }

  private async threadNotice(approval: Approval, text: string): Promise<void> {
    const row = await this.incidentOf(approval);
    if (row?.rootRef == null) return;
    await this.deps.outbox.enqueuePost({
      channel: row.channel,
      threadRef: row.rootRef,
      payload: this.deps.presenter.notice(text),
    });
  }

  private async updateCard(approval: Approval, buttons: boolean): Promise<void> {
    const ref = await this.deps.store.approvalCardRef(approval.id);
    if (ref === undefined) return;
    await this.deps.outbox.enqueueUpdate({
      messageRef: ref,
      payload: this.deps.presenter.card(approval, this.infoFor(approval), { buttons }),
    });
  }

  private withVerify(plan: ActionPlan): ActionPlan {
    if (plan.verify.checks.length > 0) return plan;
    return { ...plan, verify: { ...plan.verify, checks: actionVerification[plan.actionId] ?? [] } };
  }

  /** What the card shows: the plan's info, and what this offer does beyond it (`why`) first. */
  private cardInfo(plan: ActionPlan, approval: Approval): CardInfo {
    const info = cardInfoOf(plan, this.deps.config.remediation.dryRun);
    return approval.why === undefined ? info : { ...info, notes: [approval.why, ...info.notes] };
  }

  private infoFor(approval: Approval): CardInfo {
    const planned = planAction({ actionId: approval.actionId, nodes: approval.targets }, this.deps.config);
    if (planned.ok) return this.cardInfo(planned.plan, approval);
    return {
      label: `${approval.actionId} on ${approval.targets.join(', ')}`,
      risk: '?',
      details: approval.commands.map((c) => `${c.command} on ${c.node}`),
      notes: [planned.reason],
      dryRun: this.deps.config.remediation.dryRun,
    };
  }

  /**
   * The one caller holding the start-run effect: re-check, run, verify, report. Whatever fails
   * on the way (the store, a probe, a bug), the approval ends on record: a run that started is
   * finished with what is known of it, one that had not is cancelled (see settleRun).
   */
  private async run(approved: Approval): Promise<void> {
    const progress: RunProgress = { started: false, ended: false, report: undefined, error: undefined };
    try {
      await this.attemptRun(approved, progress);
    } catch (error) {
      progress.error = asOkomeError(error);
      this.log.error({ err: progress.error, approval: approved.id }, 'the run failed');
    } finally {
      await this.settleRun(approved, progress);
    }
  }

  private async attemptRun(approved: Approval, progress: RunProgress): Promise<void> {
    const { config, store, diagnostics, now } = this.deps;
    const proposed: ProposedAction = { actionId: approved.actionId, nodes: approved.targets };
    const row = await this.incidentOf(approved);
    const diagnosis = readStoredReport(row?.lastReport);
    const planned = planAction(proposed, config);
    const changed: string[] = [];
    if (!planned.ok) changed.push(`the action can no longer be planned: ${planned.reason}`);
    const plan = planned.ok ? this.withVerify(planned.plan) : undefined;
    if (plan !== undefined) {
      const drift = commandsChanged(approved.commands, plan);
      if (drift !== undefined) changed.push(drift);
      const last = await store.lastFinishedAt(approved.actionId, approved.targets);
      if (last !== undefined && now() - last < plan.cooldownMs) {
        changed.push(
          `cooldown: ${approved.actionId} ran on ${approved.targets.join(', ')} ${Math.round((now() - last) / 1000)} s ago (cooldown ${Math.round(plan.cooldownMs / 1000)} s)`,
        );
      }
    }
    if (row?.status !== 'open') changed.push('the incident is no longer open');
    if (diagnosis === undefined) changed.push('the diagnosis this approval came from is not stored');
    if (changed.length === 0 && plan !== undefined && diagnosis !== undefined) {
      await this.threadNotice(
        approved,
        `Approved by ${approved.approvers.map((a) => this.mention(a.user)).join(', ')}. Re-checking before running ${plan.label}…`,
      );
      // Fresh handshakes to the targets: a host key that changed since the diagnosis is caught
      // here, not trusted from a connection authenticated before the change.
      await Promise.all(approved.targets.map((n) => this.deps.shell.refresh(n)));
      const current = await diagnostics.run({ kind: 'status' });
      const pre = checkPrecondition({
        proposed,
        diagnosis,
        current,
        vipRelated: touchesVip(plan),
        // Windowed symptoms: the stored diagnosis and the samples since, not this re-check's instant.
        recovery: (origin) => diagnostics.recovery(origin, diagnosis.checks, Date.parse(diagnosis.startedAt)),
      });
      if (!pre.ok) changed.push(...pre.changed);
    }
    if (changed.length > 0 || plan === undefined) {
      const reason = `the state changed since the diagnosis: ${changed.join('; ')}`;
      const cancelled = await this.apply(approved.id, { kind: 'cancel', reason });
      progress.ended = true;
      await this.carryOut(cancelled);
      await this.threadNotice(
        approved,
        `:raised_hand: Not run: ${changed.map((c) => this.deps.presenter.outside(c)).join('; ')}. Run \`/okome status\` for a fresh diagnosis.`,
      );
      return;
    }
    const started = await this.apply(approved.id, { kind: 'start-run' });
    if (started.verdict !== 'accepted') {
      progress.ended = true;
      await this.carryOut(started);
      return;
    }
    progress.started = true;
    await this.carryOut(started);
    await this.timeline(
      approved,
      'approval',
      `Running ${plan.label}, approved by ${approved.approvers.map((a) => a.user).join(', ')}`,
    );
    const report = await executePlan(plan, {
      shell: this.deps.shell,
      redis: this.deps.redis,
      verify: (checks, nodes) => this.verify(checks, nodes),
      now,
      sleep: this.sleep,
      stepTimeoutMs: config.remediation.stepTimeoutMs,
      redisTimeoutMs: config.timeouts.redisMs,
      dryRun: config.remediation.dryRun,
      onProgress: (p) => {
        if (p.kind === 'step-started')
          this.log.info({ node: p.node, command: p.command, approval: approved.id }, 'step started');
      },
    });
    progress.report = report;
    const who = approved.approvers.map((a) => this.mention(a.user)).join(', ');
    const row2 = await this.incidentOf(approved);
    if (row2?.rootRef != null) {
      for (const m of this.deps.presenter.execution(report, who))
        await this.deps.outbox.enqueuePost({ channel: row2.channel, threadRef: row2.rootRef, payload: m });
    }
    for (const step of report.steps) {
      await store.appendAudit({
        at: now(),
        approvalId: approved.id,
        incidentId: approved.incidentId,
        actionId: approved.actionId,
        actor: 'bot',
        event: 'execute-step',
        verdict: step.ok ? 'accepted' : 'refused',
        code: step.exitCode === null ? (step.errorCode ?? 'no-exit-status') : `exit-${step.exitCode}`,
        reason: `${step.command} on ${step.node}: ${step.exitCode === null ? 'no exit status' : `exit ${step.exitCode}`} in ${step.durationMs} ms`,
        stateBefore: 'running',
        stateAfter: 'running',
        targets: [step.node],
        commands: [step.command],
      });
      // The exact command and its (capped) output: the post-incident report shows them.
      await this.timeline(
        approved,
        'command',
        `${step.node}: ${step.command} → ${step.exitCode ?? 'no exit status'} (${step.durationMs} ms)`,
        {
          node: step.node,
          command: step.command,
          exitCode: step.exitCode,
          durationMs: step.durationMs,
          stdout: step.stdout,
          stderr: step.stderr,
          truncated: step.truncated,
        },
      );
    }
  }

  /**
   * The run's end on record, whatever happened: a run that started is finished (with its
   * report's result, or as a failure when it stopped before one), retried a few times while the
   * store fails; one that never started is cancelled. What still cannot be written is left to
   * the stuck-run sweep, which ends it once the store works again.
   */
  private async settleRun(approved: Approval, progress: RunProgress): Promise<void> {
    if (progress.ended) return;
    const { report, error } = progress;
    const incomplete = error === undefined ? '' : ` (the record of the run is incomplete: ${error.code})`;
    const event: ApprovalEvent = !progress.started
      ? { kind: 'cancel', reason: `the run stopped before anything ran: ${error?.code ?? 'unknown error'}` }
      : report !== undefined
        ? {
            kind: 'finish',
            result: report.ok ? 'success' : 'failure',
            summary: `${report.summary}${incomplete}`,
          }
        : {
            kind: 'finish',
            result: 'failure',
            summary: `internal error: ${error?.code ?? 'unknown'}; check the node, the commands may have run`,
          };
    let decision: Decision | undefined;
    for (let attempt = 1; decision === undefined; attempt += 1) {
      try {
        decision = await this.apply(approved.id, event);
      } catch (failure) {
        if (attempt >= SETTLE_ATTEMPTS) {
          this.log.error(
            { err: failure, approval: approved.id, event: event.kind },
            'the end of a run could not be recorded; the stuck-run sweep will end it',
          );
          return;
        }
        await this.sleep(SETTLE_RETRY_MS * attempt);
      }
    }
    if (decision.verdict !== 'accepted') return;
    try {
      if (event.kind === 'finish') {
        const outcome = `${event.result === 'success' ? 'Succeeded' : 'Failed'}: ${event.summary}`;
        const verification = report?.verification;
        await this.timeline(
          approved,
          'outcome',
          outcome,
          verification === undefined
            ? undefined
            : {
                verification: {
                  ok: verification.ok,
                  attempts: verification.attempts,
                  checks: verification.results,
                },
                ...(verification.hitRatio === undefined ? {} : { hitRatio: verification.hitRatio }),
              },
        );
      }
      await this.carryOut(decision);
      if (event.kind === 'cancel')
        await this.threadNotice(approved, `:warning: Not run: ${event.reason}. Run \`/okome status\` again.`);
    } catch (failure) {
      this.log.error({ err: failure, approval: approved.id }, 'the end of a run is recorded, not said');
    }
  }

  private async timeline(
    approval: Approval,
    kind: 'approval' | 'command' | 'outcome',
    text: string,
    data?: unknown,
  ): Promise<void> {
    await this.deps.store.appendTimeline({
      incidentId: approval.incidentId,
      at: this.deps.now(),
      kind,
      text,
      ...(data === undefined ? {} : { data }),
    });
  }

  /** The runbook's verification: every listed check on the action's nodes passes. */
  private async verify(checks: readonly string[], nodes: readonly string[]): Promise<VerifyResult> {
    const report = await this.deps.diagnostics.run({ kind: 'checks', checks, nodes });
    const bad = report.checks.filter((c) => c.status !== 'ok');
    const details = report.checks
      .map((c) => `${c.status === 'ok' ? 'ok  ' : 'FAIL'} ${c.id}: ${c.summary}`)
      .join('\n');
    const results = report.checks.map((c) => ({ id: c.id, status: c.status, summary: c.summary }));
    const hitRatio = hitRatioSampleOf(report.checks);
    return {
      ok: report.checks.length > 0 && bad.length === 0,
      details,
      results,
      ...(hitRatio === undefined ? {} : { hitRatio }),
    };
  }

  /** Start-up: whatever a crash left approved or running is interrupted and said so; never re-run. */
  async recover(): Promise<number> {
    const stuck = await this.deps.store.approvalsInStates(['approved', 'running']);
    for (const a of stuck) await this.carryOut(await this.apply(a.id, { kind: 'crash-recovery' }));
    return stuck.length;
  }

  /**
   * The incident is being resolved: what has not started is cancelled (its card loses its
   * buttons and says why; a later click runs nothing and is told so); a run in progress is
   * waited for, so its outcome is recorded before the incident resolves.
   */
  async closeForIncident(incidentId: number, reason: string): Promise<void> {
    const open = (await this.deps.store.approvalsInStates(['pending', 'approved'])).filter(
      (a) => a.incidentId === incidentId,
    );
    for (const a of open) await this.carryOut(await this.apply(a.id, { kind: 'cancel', reason }));
    const running = [...this.runs.values()].filter((r) => r.incidentId === incidentId).map((r) => r.done);
    await Promise.allSettled(running);
  }

  isRunning(incidentId: number): boolean {
    return [...this.runs.values()].some((r) => r.incidentId === incidentId);
  }

  private async track(approval: Approval, run: Promise<void>): Promise<void> {
    const done = run.finally(() => this.runs.delete(approval.id));
    this.runs.set(approval.id, { incidentId: approval.incidentId, done });
    await done;
  }

  /**
   * Periodic: runs that will never record their end are ended, said in the thread and audited
   * (interrupted, never re-run): a run gone from this process (its finish could not be written
   * while the store failed) or one running longer than its step timeouts allow (hung). An
   * approval left approved by a run that stopped before starting is cancelled.
   */
  async endStuckRuns(): Promise<number> {
    const { store, now } = this.deps;
    let ended = 0;
    for (const a of await store.approvalsInStates(['approved', 'running'])) {
      if (this.isLive(a) && a.state === 'approved') continue;
      const inProcess = this.runs.has(a.id) || this.deps.sharedRuns === true;
      if (a.state === 'approved') {
        const reason = 'the run stopped before anything ran';
        await this.carryOut(await this.apply(a.id, { kind: 'cancel', reason }));
        ended += 1;
        continue;
      }
      if (a.state !== 'running') continue;
      const overdue = now() - (a.startedAt ?? a.createdAt) > this.maxRunMs(a);
      if (inProcess && !overdue) continue;
      const reason = inProcess
        ? `still running after ${Math.round((now() - (a.startedAt ?? a.createdAt)) / 1000)} s, longer than its step timeouts allow`
        : 'the run ended but its end could not be written';
      const decision = await this.apply(a.id, { kind: 'stuck', reason });
      if (decision.verdict !== 'accepted') continue;
      await this.timeline(a, 'outcome', `Interrupted: ${reason}`);
      await this.carryOut(decision);
      this.log.error({ approval: a.id, reason }, 'stuck run ended');
      ended += 1;
    }
    return ended;
  }

  /**
   * Pending, or approved/running with its run in progress here (one serving process per store).
   * Just approved counts too: its run starts right after the card is updated.
   */
  private isLive(a: Approval): boolean {
    if (a.state === 'pending' || this.runs.has(a.id)) return true;
    const approvedAt = Math.max(0, ...a.approvers.map((x) => x.at));
    return a.state === 'approved' && this.deps.now() - approvedAt < STUCK_GRACE_MS;
  }

  /** The longest a run may take: every step to its timeout, every verification to its window. */
  private maxRunMs(a: Approval): number {
    const { config } = this.deps;
    const planned = planAction({ actionId: a.actionId, nodes: a.targets }, config);
    const windowMs = planned.ok ? planned.plan.verify.windowMs : 60_000;
    const { statusMs, sshConnectMs } = config.timeouts;
    const steps = a.commands.length * (config.remediation.stepTimeoutMs + sshConnectMs);
    const verifications = (a.targets.length + 1) * (windowMs + statusMs);
    return steps + verifications + statusMs + STUCK_GRACE_MS;
  }

  /** Periodic: pending approvals past their expiry lose their buttons and say why. */
  async expire(): Promise<number> {
    const { store, now } = this.deps;
    const due = (await store.approvalsInStates(['pending'])).filter((a) => a.expiresAt <= now());
    for (const a of due) {
      if (decide(a, { kind: 'expire' }, now()).changed)
        await this.carryOut(await this.apply(a.id, { kind: 'expire' }));
    }
    return due.length;
  }
}

function sameNodes(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join(',') === [...b].sort().join(',');
}
