import type { CheckId, CheckResult, CheckStatus, Facts } from '../domain/check-result.js';
import { ErrorCode, isOkomeError } from '../errors.js';
import { refusedByPeer } from '../probes/deadline.js';

/** What a check's body returns when it could judge. */
export interface CheckOutcome {
  readonly status: CheckStatus;
  readonly summary: string;
  readonly facts?: Facts;
  readonly evidence?: string;
}

export interface CheckTask {
  readonly id: string;
  readonly check: CheckId;
  readonly title: string;
  readonly node: string | undefined;
  /** How the check reaches its target; derived checks (ssh, vip-owner) read these. */
  readonly via: 'ssh' | 'http' | 'redis';
  readonly timeoutMs: number;
  run(signal: AbortSignal, timeoutMs: number): Promise<CheckOutcome>;
}

export interface RunOptions {
  /** The whole run must end by then, whatever hangs. */
  readonly deadlineMs: number;
  readonly now: () => number;
  readonly onResult?: (result: CheckResult, done: number, total: number) => void;
}

const MAX_EVIDENCE = 4000;

/**
 * Runs every task concurrently. Each has its own timeout, clipped to the overall deadline;
 * a task that outlives it is reported as `timeout` with the reason and abandoned (its signal
 * is aborted), so one hung node cannot hold the report.
 */
export async function runChecks(tasks: readonly CheckTask[], options: RunOptions): Promise<CheckResult[]> {
  const startedAt = options.now();
  const results: CheckResult[] = new Array(tasks.length);
  let done = 0;
  await Promise.all(
    tasks.map(async (task, index) => {
      const budget = Math.max(
        1,
        Math.round(Math.min(task.timeoutMs, options.deadlineMs - (options.now() - startedAt))),
      );
      const result = await runOne(task, budget, options.now);
      results[index] = result;
      done += 1;
      options.onResult?.(result, done, tasks.length);
    }),
  );
  return results;
}

async function runOne(task: CheckTask, timeoutMs: number, now: () => number): Promise<CheckResult> {
  const controller = new AbortController();
  const t0 = now();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    const outcome = await Promise.race([task.run(controller.signal, timeoutMs), timedOut]);
    if (outcome === 'timeout') {
      controller.abort();
      return result(task, now() - t0, {
        status: 'timeout',
        summary: `no answer within ${timeoutMs} ms`,
        errorCode: ErrorCode.ProbeTimeout,
      });
    }
    return result(task, now() - t0, { ...outcome, errorCode: undefined });
  } catch (error) {
    return result(task, now() - t0, failure(error));
  } finally {
    clearTimeout(timer);
  }
}

function failure(error: unknown): CheckOutcome & { errorCode: string } {
  const message = error instanceof Error ? error.message : String(error);
  if (isOkomeError(error)) {
    switch (error.code) {
      case ErrorCode.SshHostKeyMismatch:
        return {
          status: 'fail',
          summary: `host key mismatch, refused before any command: ${message}`,
          errorCode: error.code,
        };
      case ErrorCode.SshConnectFailed:
      case ErrorCode.ProbeFailed:
        return {
          status: 'unreachable',
          summary: message,
          errorCode: error.code,
          // A reset is an answer: the host is up (a failover's cause tells it from a dead Pi).
          facts: { kind: 'transport', refused: refusedByPeer(error) },
        };
      case ErrorCode.SshExecTimeout:
      case ErrorCode.ProbeTimeout:
        return {
          status: 'timeout',
          summary: message,
          errorCode: error.code,
          facts: { kind: 'transport', refused: false },
        };
      default:
        return { status: 'unknown', summary: message, errorCode: error.code };
    }
  }
  return { status: 'unknown', summary: `internal error: ${message}`, errorCode: ErrorCode.Internal };
}

function result(
  task: CheckTask,
  durationMs: number,
  o: CheckOutcome & { errorCode: string | undefined },
): CheckResult {
  const evidence =
    o.evidence !== undefined && o.evidence.length > MAX_EVIDENCE
      ? `${o.evidence.slice(0, MAX_EVIDENCE)}\n…and ${o.evidence.length - MAX_EVIDENCE} more characters`
      : o.evidence;
  return {
    id: task.id,
    check: task.check,
    title: task.title,
    node: task.node,
    status: o.status,
    summary: o.summary,
    facts: o.facts,
    evidence,
    errorCode: o.errorCode,
    durationMs: Math.round(durationMs),
  };
}
