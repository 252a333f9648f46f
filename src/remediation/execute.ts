import type { CheckStatus } from '../domain/check-result.js';
import type { HitRatioSample } from '../domain/hit-ratio-sample.js';
import { asOkomeError, ErrorCode } from '../errors.js';
import type { NodeShell, RedisProbe } from '../probes/ports.js';
import type { ActionPlan, NodePlan, PlannedStep } from './plan.js';

/**
 * Runs an ActionPlan: node by node (or in parallel when the plan allows it), step by step,
 * stopping a node at its first failing step; then the verification checks, polled until they
 * pass or the action's window is over. Dry-run returns what would run and runs nothing.
 */

export interface VerifyResult {
  readonly ok: boolean;
  readonly details: string;
  /** Each check as judged (the post-incident report compares them with the diagnosis). */
  readonly results?: readonly VerifiedCheck[];
  /** The Redis hit ratio, when a verification check measured it (the report's chart). */
  readonly hitRatio?: HitRatioSample;
}

export interface VerifiedCheck {
  readonly id: string;
  readonly status: CheckStatus;
  readonly summary: string;
}

/** Runs verification checks (by check id) for these nodes; the caller builds it on Diagnostics. */
export type VerifyFn = (checkIds: readonly string[], nodes: readonly string[]) => Promise<VerifyResult>;

export interface ExecuteDeps {
  readonly shell: Pick<NodeShell, 'exec'>;
  readonly redis: Pick<RedisProbe, 'flushdb'>;
  readonly verify: VerifyFn;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** Deadline of one SSH step (a restart can be slower than a diagnostic command). */
  readonly stepTimeoutMs: number;
  readonly redisTimeoutMs: number;
  /** Global dry-run: nothing runs whatever the action says. */
  readonly dryRun?: boolean;
  /** Characters kept per stream for Slack. Default 2000. */
  readonly maxOutputChars?: number;
  /** Between verification attempts. Default 1000 ms. */
  readonly verifyIntervalMs?: number;
  /** Stops before the next step (shutdown); a step already sent is not taken back. */
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: ProgressEvent) => void;
}

export type ProgressEvent =
  | { readonly kind: 'step-started'; readonly node: string; readonly command: string }
  | { readonly kind: 'step-finished'; readonly step: StepReport }
  | { readonly kind: 'verifying'; readonly nodes: readonly string[]; readonly attempt: number };

export interface StepReport {
  readonly node: string;
  readonly kind: PlannedStep['kind'];
  readonly label: string;
  readonly command: string;
  /** null: no exit status (killed, timed out, connection lost, not sent). */
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
  /** Output was cut: by the SSH pool's byte cap or by maxOutputChars here. */
  readonly truncated: boolean;
  readonly ok: boolean;
  /** Stable error code when the step could not run to an exit status. */
  readonly errorCode: string | undefined;
}

export interface VerificationReport {
  readonly nodes: readonly string[];
  readonly checks: readonly string[];
  readonly ok: boolean;
  readonly details: string;
  /** The last attempt's checks, as judged. */
  readonly results: readonly VerifiedCheck[];
  /** The last attempt's Redis hit ratio, when it measured one. */
  readonly hitRatio?: HitRatioSample;
  readonly attempts: number;
  readonly durationMs: number;
}

export interface WouldRun {
  readonly node: string;
  readonly address: string;
  readonly command: string;
  readonly detail: string;
}

export interface ExecutionReport {
  readonly actionId: string;
  readonly dryRun: boolean;
  readonly ok: boolean;
  readonly steps: readonly StepReport[];
  /** Planned steps that did not run because an earlier one failed (or the run was stopped). */
  readonly notRun: readonly WouldRun[];
  /** Dry-run: exactly what would run, and where. */
  readonly wouldRun: readonly WouldRun[];
  /** Between nodes of a sequential plan: the previous node's verification. */
  readonly gates: readonly VerificationReport[];
  /** After everything ran; undefined when nothing got that far or no checks are configured. */
  readonly verification: VerificationReport | undefined;
  readonly durationMs: number;
  /** What happened, without icon or duration (the execution message adds its own). */
  readonly headline: string;
  /** One line for the card, the audit and the approval's outcome: icon, headline, duration. */
  readonly summary: string;
}

/** Keeps the head and the tail (errors are usually at the end), marking the cut. */
export function capText(text: string, max: number): { text: string; cut: boolean } {
  if (text.length <= max) return { text, cut: false };
  const marker = `\n… ${text.length - max} characters cut …\n`;
  const room = Math.max(0, max - marker.length);
  let head = Math.ceil(room / 2);
  let tail = text.length - (room - head);
  // Never split a surrogate pair.
  if (head > 0 && isHighSurrogate(text.charCodeAt(head - 1))) head -= 1;
  if (tail < text.length && isLowSurrogate(text.charCodeAt(tail))) tail += 1;
  return { text: `${text.slice(0, head)}${marker}${text.slice(tail)}`, cut: true };
}

const isHighSurrogate = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLowSurrogate = (c: number) => c >= 0xdc00 && c <= 0xdfff;

function wouldRun(n: NodePlan, s: PlannedStep): WouldRun {
  return { node: n.node, address: n.address, command: s.command, detail: s.detail };
}

export async function executePlan(plan: ActionPlan, deps: ExecuteDeps): Promise<ExecutionReport> {
  const started = deps.now();
  const maxChars = deps.maxOutputChars ?? 2000;
  const all = plan.nodes.flatMap((n) => n.steps.map((s) => wouldRun(n, s)));

  if (deps.dryRun === true || plan.dryRun) {
    const dryRun = `dry run (${deps.dryRun === true ? 'global' : 'action'} setting): would run ${all.length} step(s): ${all
      .map((w) => w.detail)
      .join('; ')}; nothing ran`;
    return {
      actionId: plan.actionId,
      dryRun: true,
      ok: true,
      steps: [],
      notRun: [],
      wouldRun: all,
      gates: [],
      verification: undefined,
      durationMs: 0,
      headline: dryRun,
      summary: dryRun,
    };
  }

  const steps: StepReport[] = [];
  const notRun: WouldRun[] = [];
  const gates: VerificationReport[] = [];

  async function runStep(step: PlannedStep): Promise<StepReport> {
    deps.onProgress?.({ kind: 'step-started', node: step.node, command: step.command });
    const t0 = deps.now();
    let report: StepReport;
    try {
      if (step.kind === 'redis-flushdb') {
        await deps.redis.flushdb(deps.redisTimeoutMs);
        report = base(step, {
          exitCode: 0,
          stdout: 'OK',
          stderr: '',
          truncated: false,
          errorCode: undefined,
        });
      } else {
        const options =
          deps.signal === undefined
            ? { timeoutMs: deps.stepTimeoutMs }
            : { timeoutMs: deps.stepTimeoutMs, signal: deps.signal };
        const r = await deps.shell.exec(step.node, step.command, options);
        const out = capText(r.stdout, maxChars);
        const err = capText(
          r.signal === undefined ? r.stderr : `${r.stderr}${r.stderr ? '\n' : ''}(killed by ${r.signal})`,
          maxChars,
        );
        report = base(step, {
          exitCode: r.exitCode,
          stdout: out.text,
          stderr: err.text,
          truncated: r.truncated || out.cut || err.cut,
          errorCode: undefined,
        });
      }
    } catch (error) {
      const e = asOkomeError(error);
      const hint =
        e.code === ErrorCode.SshExecTimeout
          ? ` (after ${deps.stepTimeoutMs} ms; the command may still be running on ${step.node})`
          : e.code === ErrorCode.SshHostKeyMismatch
            ? ' (nothing was sent)'
            : '';
      report = base(step, {
        exitCode: null,
        stdout: '',
        stderr: capText(`${e.message}${hint}`, maxChars).text,
        truncated: false,
        errorCode: e.code,
      });
    }
    const done = { ...report, durationMs: Math.round(deps.now() - t0) };
    deps.onProgress?.({ kind: 'step-finished', step: done });
    return done;
  }

  /** Runs one node's steps in order; false at the first failure (the rest are listed as not run). */
  async function runNode(n: NodePlan): Promise<boolean> {
    for (const [i, step] of n.steps.entries()) {
      if (deps.signal?.aborted === true) {
        notRun.push(...n.steps.slice(i).map((s) => wouldRun(n, s)));
        return false;
      }
      const report = await runStep(step);
      steps.push(report);
      if (!report.ok) {
        notRun.push(...n.steps.slice(i + 1).map((s) => wouldRun(n, s)));
        return false;
      }
    }
    return true;
  }

  async function verifyNodes(nodes: readonly string[]): Promise<VerificationReport> {
    const t0 = deps.now();
    const interval = deps.verifyIntervalMs ?? 1000;
    const deadline = t0 + plan.verify.windowMs;
    let attempts = 0;
    let last: VerifyResult = { ok: false, details: 'not run' };
    for (;;) {
      attempts += 1;
      deps.onProgress?.({ kind: 'verifying', nodes, attempt: attempts });
      try {
        last = await deps.verify(plan.verify.checks, nodes);
      } catch (error) {
        last = { ok: false, details: `verification could not run: ${asOkomeError(error).message}` };
      }
      // Things settle (the VIP moves back in ~2 s): poll until ok or the window is over.
      if (last.ok || deps.now() + interval > deadline || deps.signal?.aborted === true) break;
      await deps.sleep(interval);
    }
    return {
      nodes,
      checks: plan.verify.checks,
      ok: last.ok,
      details: last.details,
      results: last.results ?? [],
      ...(last.hitRatio === undefined ? {} : { hitRatio: last.hitRatio }),
      attempts,
      durationMs: Math.round(deps.now() - t0),
    };
  }

  const hasChecks = plan.verify.checks.length > 0;
  let stepsOk = true;
  if (plan.sequential) {
    for (const [i, n] of plan.nodes.entries()) {
      const ok = await runNode(n);
      const rest = plan.nodes.slice(i + 1);
      if (!ok) {
        stepsOk = false;
        notRun.push(...rest.flatMap((r) => r.steps.map((s) => wouldRun(r, s))));
        break;
      }
      // The next node only once this one is back (e.g. keepalived holds or yields the VIP again).
      if (rest.length > 0 && hasChecks) {
        const gate = await verifyNodes([n.node]);
        gates.push(gate);
        if (!gate.ok) {
          stepsOk = false;
          notRun.push(...rest.flatMap((r) => r.steps.map((s) => wouldRun(r, s))));
          break;
        }
      }
    }
  } else {
    const results = await Promise.all(plan.nodes.map((n) => runNode(n)));
    stepsOk = results.every(Boolean);
  }

  const gateFailed = gates.some((g) => !g.ok);
  const verification = stepsOk && hasChecks ? await verifyNodes(plan.nodes.map((n) => n.node)) : undefined;
  const ok = stepsOk && !gateFailed && (verification?.ok ?? true);
  const durationMs = Math.round(deps.now() - started);
  const { good, headline } = headlineOf(plan, steps, notRun, gates, verification);
  return {
    actionId: plan.actionId,
    dryRun: false,
    ok,
    steps,
    notRun,
    wouldRun: [],
    gates,
    verification,
    durationMs,
    headline,
    summary: `${good ? '✅' : '❌'} ${headline} (${(Math.round(durationMs / 100) / 10).toFixed(1)} s)`,
  };
}

function base(
  step: PlannedStep,
  r: Pick<StepReport, 'exitCode' | 'stdout' | 'stderr' | 'truncated' | 'errorCode'>,
): StepReport {
  return {
    node: step.node,
    kind: step.kind,
    label: step.label,
    command: step.command,
    ...r,
    durationMs: 0,
    ok: r.exitCode === 0 && r.errorCode === undefined,
  };
}

/** What happened, in one line without icon or duration. */
function headlineOf(
  plan: ActionPlan,
  steps: readonly StepReport[],
  notRun: readonly WouldRun[],
  gates: readonly VerificationReport[],
  verification: VerificationReport | undefined,
): { good: boolean; headline: string } {
  const bad = (headline: string) => ({ good: false, headline });
  const failed = steps.find((s) => !s.ok);
  if (failed !== undefined) {
    const why =
      failed.errorCode !== undefined
        ? failed.errorCode
        : `exit ${failed.exitCode === null ? 'none' : failed.exitCode}`;
    return bad(`${failed.label} on ${failed.node} failed (${why}); ${notRun.length} step(s) not run`);
  }
  const gate = gates.find((g) => !g.ok);
  if (gate !== undefined) {
    return bad(
      `${gate.nodes.join(', ')} did not come back (${gate.details}); ${notRun.length} step(s) not run`,
    );
  }
  if (notRun.length > 0) return bad(`stopped before ${notRun.length} step(s)`);
  if (verification === undefined) {
    return {
      good: true,
      headline: `${plan.label}: ${steps.length} step(s) ran; no verification checks configured`,
    };
  }
  return verification.ok
    ? { good: true, headline: `${plan.label}: ${steps.length} step(s) ran, verified` }
    : bad(
        `${plan.label}: ${steps.length} step(s) ran, but verification failed after ${verification.attempts} attempt(s): ${verification.details}`,
      );
}
