/**
 * The small ports the diagnostics engine and remediation use to reach the cache layer.
 * Defined by their users; implemented by ssh-pool.ts (ssh2), http-probe.ts (undici) and
 * redis-probe.ts (ioredis). Every call carries a deadline; failures throw OkomeError with a
 * stable code from src/errors.ts.
 */

export interface ExecResult {
  /** null when the command was killed by a signal or the channel closed without a status. */
  readonly exitCode: number | null;
  readonly signal: string | undefined;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
  /** true when output beyond the byte cap was dropped. */
  readonly truncated: boolean;
}

export interface ExecOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /**
   * Streams stdout here as it arrives instead of keeping it (the caller bounds it; the batch
   * script does): the result's stdout is then empty. stderr is kept as usual.
   */
  readonly onStdout?: (chunk: Buffer) => void;
}

/** Runs a configured command on a configured node over a pooled, host-key-pinned SSH connection. */
export interface NodeShell {
  /**
   * @throws OkomeError OKOME_SSH_HOST_KEY_MISMATCH (nothing was sent), OKOME_SSH_CONNECT_FAILED,
   *   OKOME_SSH_EXEC_TIMEOUT.
   */
  exec(node: string, command: string, options: ExecOptions): Promise<ExecResult>;
  /**
   * Drops the node's pooled connection so the next exec handshakes again: remediation calls it
   * before acting, so the pinned host key is verified afresh, not trusted from an old session.
   */
  refresh(node: string): Promise<void>;
  /** Number of SSH handshakes completed since start (benchmarks: a warm status makes none). */
  handshakes(): number;
  close(): Promise<void>;
}

export interface HttpRequest {
  readonly url: string;
  readonly method: 'HEAD' | 'GET';
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  /** Read at most this many bytes of the body (GET only); 0 = discard it. */
  readonly maxBodyBytes?: number;
}

export interface HttpResult {
  readonly status: number;
  readonly latencyMs: number;
  /** Header names lower-cased. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface HttpProbe {
  /** @throws OkomeError OKOME_PROBE_TIMEOUT or OKOME_PROBE_FAILED (refused, reset, DNS…), with the reason. */
  request(request: HttpRequest): Promise<HttpResult>;
  close(): Promise<void>;
}

export interface RedisStats {
  readonly keyspaceHits: number;
  readonly keyspaceMisses: number;
  /** INFO server's `run_id`: changes when Redis restarts (and its counters start again). */
  readonly runId?: string | undefined;
}

export interface RateLimitCounter {
  readonly key: string;
  readonly agent: string;
  readonly window: number;
  readonly count: number;
}

export interface RedisProbe {
  /** Resolves with the server's reply (PONG expected). */
  ping(timeoutMs: number): Promise<string>;
  infoStats(timeoutMs: number): Promise<RedisStats>;
  /** Counts keys matching a glob with SCAN (never KEYS). */
  countKeys(pattern: string, timeoutMs: number): Promise<number>;
  /** Current values of `okome:budget:rl:{agent}:{window}` counters for the given window number. */
  rateLimitCounters(window: number, timeoutMs: number): Promise<readonly RateLimitCounter[]>;
  flushdb(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}
