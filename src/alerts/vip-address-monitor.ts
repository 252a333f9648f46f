import type { Logger } from '../logger.js';
import type { NodeShell } from '../probes/ports.js';
import type { SetTimer } from './vip-watcher.js';

/**
 * Pushes VIP changes instead of polling for them: one long-lived `ip -o monitor address` per
 * VIP-capable node over the node's pooled SSH connection (one session and one process on the Pi
 * for as long as the bot leads, instead of a command per poll). A line naming the VIP (added or
 * deleted) is news; so is a stream that was up and ended (the node or the link may be gone). The
 * watcher is told with a nudge and polls to judge what it means: the stream only says when to look.
 */

/** Printed before the monitor starts: from then on, no change goes unseen. */
const READY = 'okome-vip-monitor-ready';
/** `exec` replaces the shell, so the channel's KILL reaches `ip` itself. */
export const MONITOR_COMMAND = `echo ${READY}; exec ip -o monitor address`;
/** A stream is renewed this often (and so re-checks the pinned host key on a fresh exec). */
const STREAM_MAX_MS = 6 * 60 * 60 * 1000;
/** Each line is short; a longer one is not `ip` talking and is dropped. */
const MAX_LINE = 4096;

export type AddressChange = 'added' | 'deleted' | 'stream-ended';

export interface VipAddressMonitorOptions {
  readonly shell: Pick<NodeShell, 'exec'>;
  readonly nodes: readonly string[];
  /** The VIP, e.g. 192.168.86.18. */
  readonly address: string;
  readonly onChange: (node: string, change: AddressChange) => void;
  readonly setTimer: SetTimer;
  /** Wait before opening a stream again after it ended or could not start (default 5000 ms). */
  readonly retryMs?: number;
  readonly logger?: Logger;
}

/** What a line of `ip -o monitor address` says about `address`, if anything. */
export function addressEvent(line: string, address: string): 'added' | 'deleted' | undefined {
  const escaped = address.replaceAll('.', '\\.');
  if (!new RegExp(`\\binet6? ${escaped}/`).test(line)) return undefined;
  return /^(\[[A-Z]+\]\s*)?Deleted\b/.test(line) ? 'deleted' : 'added';
}

export class VipAddressMonitor {
  private running = false;
  private readonly up = new Set<string>();
  private readonly streams = new Map<string, AbortController>();
  private readonly retries = new Map<string, () => void>();
  private readonly warned = new Set<string>();

  constructor(private readonly options: VipAddressMonitorOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    for (const node of this.options.nodes) this.open(node);
  }

  stop(): void {
    this.running = false;
    for (const cancel of this.retries.values()) cancel();
    this.retries.clear();
    for (const stream of this.streams.values()) stream.abort();
    this.streams.clear();
    this.up.clear();
  }

  /** Every node's stream is open and monitoring: changes are pushed, polls may slow down. */
  live(): boolean {
    return this.running && this.options.nodes.length > 0 && this.up.size === this.options.nodes.length;
  }

  /** Nodes whose stream is open, for /healthz. */
  liveNodes(): string[] {
    return this.options.nodes.filter((n) => this.up.has(n));
  }

  private open(node: string): void {
    if (!this.running) return;
    const controller = new AbortController();
    this.streams.set(node, controller);
    let pending = '';
    let ready = false;
    const onLine = (line: string): void => {
      if (!ready) {
        if (line.trim() === READY) {
          ready = true;
          this.up.add(node);
          this.warned.delete(node);
          this.options.logger?.debug({ node }, 'VIP address stream open');
        }
        return;
      }
      const change = addressEvent(line, this.options.address);
      if (change !== undefined) this.options.onChange(node, change);
    };
    const onStdout = (chunk: Buffer): void => {
      pending += chunk.toString('utf8');
      for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
        onLine(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
      if (pending.length > MAX_LINE) pending = '';
    };
    const ended = (reason: string): void => {
      if (this.streams.get(node) !== controller) return;
      this.streams.delete(node);
      const wasUp = this.up.delete(node);
      if (!this.running) return;
      if (wasUp) this.options.onChange(node, 'stream-ended');
      else if (!this.warned.has(node)) {
        // Said once per outage: the watcher's polls go on meanwhile at their normal interval.
        this.warned.add(node);
        this.options.logger?.warn({ node, reason }, 'VIP address stream could not start: polling instead');
      }
      const cancel = this.options.setTimer(() => {
        this.retries.delete(node);
        this.open(node);
      }, this.options.retryMs ?? 5000);
      this.retries.set(node, cancel);
    };
    this.options.shell
      .exec(node, MONITOR_COMMAND, { timeoutMs: STREAM_MAX_MS, signal: controller.signal, onStdout })
      .then(
        (r) =>
          ended(
            `ended with exit ${r.exitCode ?? r.signal ?? '?'}${r.stderr === '' ? '' : `: ${r.stderr.trim()}`}`,
          ),
        (error: unknown) => ended(error instanceof Error ? error.message : String(error)),
      );
  }
}
