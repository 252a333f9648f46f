import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ErrorCode, OkomeError } from '../errors.js';
import { abortError } from '../probes/deadline.js';
import type { ExecOptions, ExecResult, NodeShell } from '../probes/ports.js';
import { type BatchFrame, BatchFrameParser, buildBatchScript, TIMEOUT_EXIT } from './batch-protocol.js';

export interface BatchingShellOptions {
  /** Per-command output cap, as the pool applies to one exec. */
  readonly maxOutputBytes: number;
}

interface Request {
  readonly command: string;
  readonly options: ExecOptions;
  readonly resolve: (r: ExecResult) => void;
  readonly reject: (e: unknown) => void;
  settled: boolean;
}

/** The node's `timeout` fires this much before the check's own, so the node's 124 arrives first. */
const NODE_TIMEOUT_MARGIN_MS = 300;

/**
 * A NodeShell for diagnostics: the commands asked of one node in the same tick (a status run
 * starts all its checks at once) go out as one exec of a batch script, and each caller gets
 * its command's own ExecResult as its frame arrives. A lone command goes out as it is.
 * Only read-only commands pass here; remediation talks to the pool directly.
 */
export class BatchingShell implements NodeShell {
  private readonly queued = new Map<string, Request[]>();

  constructor(
    private readonly inner: NodeShell,
    private readonly options: BatchingShellOptions,
  ) {}

  exec(node: string, command: string, options: ExecOptions): Promise<ExecResult> {
    return new Promise<ExecResult>((resolve, reject) => {
      let queue = this.queued.get(node);
      if (queue === undefined) {
        queue = [];
        this.queued.set(node, queue);
        setImmediate(() => this.flush(node));
      }
      queue.push({ command, options, resolve, reject, settled: false });
    });
  }

  refresh(node: string): Promise<void> {
    return this.inner.refresh(node);
  }

  handshakes(): number {
    return this.inner.handshakes();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private flush(node: string): void {
    const queue = this.queued.get(node) ?? [];
    this.queued.delete(node);
    const live = queue.filter((r) => {
      if (r.options.signal?.aborted !== true) return true;
      r.reject(abortError(r.options.signal, `ssh ${node}`));
      return false;
    });
    const [only] = live;
    if (live.length === 1 && only !== undefined) {
      this.inner.exec(node, only.command, only.options).then(only.resolve, only.reject);
      return;
    }
    if (live.length > 1) void this.runBatch(node, live);
  }

  private async runBatch(node: string, batch: readonly Request[]): Promise<void> {
    const cap = this.options.maxOutputBytes;
    const delimiter = `okome${randomBytes(12).toString('hex')}`;
    const parser = new BatchFrameParser(delimiter, cap);
    const started = performance.now();
    const script = buildBatchScript(
      batch.map((r) => ({
        command: r.command,
        timeoutMs: Math.max(100, r.options.timeoutMs - NODE_TIMEOUT_MARGIN_MS),
      })),
      delimiter,
      cap,
    );
    // The batch is given up only when every caller has given up on its command.
    const abandoned = new AbortController();
    const settle = (r: Request, outcome: () => void): void => {
      if (r.settled) return;
      r.settled = true;
      outcome();
    };
    for (const r of batch) {
      r.options.signal?.addEventListener(
        'abort',
        () => {
          settle(r, () => r.reject(abortError(r.options.signal, `ssh ${node}`)));
          // Not when the last frame settled it: the script is ending and its trap cleans up.
          if (batch.every((b) => b.settled) && !parser.complete) abandoned.abort();
        },
        { once: true },
      );
    }
    const deliver = (frame: BatchFrame): void => {
      const r = batch[frame.id];
      if (r === undefined) return;
      settle(r, () => {
        if (frame.exitCode === TIMEOUT_EXIT) {
          r.reject(
            new OkomeError(
              ErrorCode.SshExecTimeout,
              `ssh ${node}: command timed out after ${Math.max(100, r.options.timeoutMs - NODE_TIMEOUT_MARGIN_MS)} ms (killed on the node, exit ${TIMEOUT_EXIT})`,
              { userSafe: true },
            ),
          );
          return;
        }
        r.resolve({
          exitCode: frame.exitCode,
          signal: undefined,
          stdout: frame.stdout,
          stderr: frame.stderr,
          durationMs: performance.now() - started,
          truncated: frame.truncated,
        });
      });
    };
    let failure: unknown;
    try {
      const result = await this.inner.exec(node, script, {
        timeoutMs: Math.max(...batch.map((r) => r.options.timeoutMs)),
        signal: abandoned.signal,
        onStdout: (chunk) => {
          for (const frame of parser.push(chunk)) deliver(frame);
        },
      });
      const stderr = result.stderr.trim().slice(0, 200);
      failure = new OkomeError(
        ErrorCode.SshBatchIncomplete,
        `ssh ${node}: the batch of read-only commands ${
          parser.error === undefined ? 'ended' : `broke off (${parser.error})`
        } before this command reported (batch exit ${result.exitCode ?? result.signal ?? '?'}${
          stderr === '' ? '' : `: ${stderr}`
        })`,
        { userSafe: true },
      );
    } catch (error) {
      failure = error;
    }
    for (const r of batch) settle(r, () => r.reject(failure));
  }
}
