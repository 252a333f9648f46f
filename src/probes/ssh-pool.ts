import { readFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { Client, type ClientChannel } from 'ssh2';
import { ErrorCode, OkomeError } from '../errors.js';
import { abortError, describeNetworkError } from './deadline.js';
import { sshFingerprint } from './host-key.js';
import type { ExecOptions, ExecResult, NodeShell } from './ports.js';

/** How to reach one node; a config `ResolvedNode` fits as it is. */
export interface SshTarget {
  readonly address: string;
  readonly ssh: {
    readonly port: number;
    readonly user: string;
    readonly privateKeyPath: string;
    /** Pinned host key fingerprint, `SHA256:…` as `ssh-keygen -lf` prints it. */
    readonly hostKey: string;
  };
  /** The key path resolved against the config file's folder; preferred over `ssh.privateKeyPath`. */
  readonly privateKeyPath?: string;
}

export interface SshPoolOptions {
  /** Deadline for TCP connect + SSH handshake + authentication. */
  readonly connectTimeoutMs: number;
  /** Cap on stdout + stderr kept per command; the rest is dropped and `truncated` set. */
  readonly maxOutputBytes: number;
  /** Channels open at once per connection; more wait in a queue (OpenSSH's MaxSessions is 10). Default 8. */
  readonly maxSessionsPerNode?: number;
  /**
   * Default 10 000 ms (0 disables); a connection is dropped after `keepaliveCountMax` (default 3)
   * unanswered, which also fails the commands running on it at once instead of at their deadline.
   */
  readonly keepaliveIntervalMs?: number;
  readonly keepaliveCountMax?: number;
  /**
   * Output read and dropped past the cap before the command is killed (its result is then
   * returned truncated, without an exit status). Default 16 MiB.
   */
  readonly maxDrainBytes?: number;
  /** How long a host-key mismatch refuses the node without reconnecting. Default 60 000 ms. */
  readonly hostKeyRefusalMs?: number;
  readonly logger?: Logger;
}

/** The pool's node map from configured nodes (`LoadedConfig.nodes` fits as it is). */
export function sshTargets(
  nodes: readonly (SshTarget & { readonly name: string })[],
): Map<string, SshTarget> {
  return new Map(nodes.map((node) => [node.name, node]));
}

interface LiveConnection {
  readonly client: Client;
  /** Our own socket: ssh2's destroy() is a no-op once end() was called, this one always works. */
  readonly socket: Socket;
  /** Called when the connection closes, for execs still running on it. */
  readonly onLost: Set<() => void>;
  /** When the server last sent anything on this connection (performance.now()). */
  lastHeard: number;
}

interface NodeConn {
  readonly name: string;
  readonly target: SshTarget;
  live: LiveConnection | undefined;
  connecting: Promise<LiveConnection> | undefined;
  active: number;
  readonly waiting: Array<() => void>;
  refusal: { readonly until: number; readonly error: OkomeError } | undefined;
}

/**
 * The command certainly did not start, so it can be tried again: the socket was no longer
 * writable (`reconnect`), or the server refused the channel. OpenSSH frees a session slot only
 * after the client's close has been processed, so a burst of closes and opens can briefly
 * exceed MaxSessions even below the pool's own limit.
 */
class Retry extends Error {
  constructor(
    message: string,
    readonly reconnect: boolean,
    options?: { cause: unknown },
  ) {
    super(message, options);
  }
}

/** A retired connection closes after this, so execs already running on it can finish. */
const RETIRE_AFTER_MS = 15_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * NodeShell over ssh2: one persistent, host-key-pinned connection per node shared by all
 * execs (handshakes are what is expensive on a Pi 3), reconnected on the next exec after it
 * breaks. Runs exactly the command string it is given; builds none.
 */
export class SshPool implements NodeShell {
  private readonly conns = new Map<string, NodeConn>();
  private readonly keys = new Map<string, Promise<Buffer>>();
  private readonly sockets = new Set<Socket>();
  private readonly log: Logger | undefined;
  private readonly maxSessions: number;
  private handshakeCount = 0;
  private readonly execsByNode = new Map<string, number>();
  private closed = false;

  constructor(
    nodes: ReadonlyMap<string, SshTarget> | Readonly<Record<string, SshTarget>>,
    private readonly options: SshPoolOptions,
  ) {
    const entries = nodes instanceof Map ? [...nodes.entries()] : Object.entries(nodes);
    for (const [name, target] of entries) {
      this.conns.set(name, {
        name,
        target,
        live: undefined,
        connecting: undefined,
        active: 0,
        waiting: [],
        refusal: undefined,
      });
    }
    this.maxSessions = Math.max(1, options.maxSessionsPerNode ?? 8);
    this.log = options.logger?.child({ component: 'ssh-pool' });
  }

  handshakes(): number {
    return this.handshakeCount;
  }

  /** Commands started (one channel each) on a node since start: what a status costs the node. */
  execs(node: string): number {
    return this.execsByNode.get(node) ?? 0;
  }

  /** Commands started per node since start. */
  execCounts(): ReadonlyMap<string, number> {
    return new Map(this.execsByNode);
  }

  /** Nodes with a pooled connection open now. */
  openConnections(): number {
    let open = 0;
    for (const conn of this.conns.values()) if (conn.live !== undefined) open++;
    return open;
  }

  async exec(node: string, command: string, options: ExecOptions): Promise<ExecResult> {
    const conn = this.conns.get(node);
    if (conn === undefined) throw new OkomeError(ErrorCode.Internal, `ssh: no configured node named ${node}`);
    const started = performance.now();
    const deadline = started + options.timeoutMs;
    let reconnected = false;
    for (let attempt = 1; ; attempt++) {
      if (options.signal?.aborted === true) throw abortError(options.signal, `ssh ${node}`);
      if (this.closed) throw new OkomeError(ErrorCode.Internal, 'ssh: the pool is closed');
      // Connect before queueing for a session: every waiter shares the one handshake.
      const live = await this.connection(conn, deadline, options.signal);
      await this.acquireSession(conn, deadline, options.signal);
      let retry: Retry;
      try {
        return await this.run(conn, live, command, started, deadline, options);
      } catch (error) {
        if (!(error instanceof Retry)) throw error;
        retry = error;
      } finally {
        this.releaseSession(conn);
      }
      const pause = retry.reconnect ? 0 : Math.min(10 * attempt, 100);
      if ((retry.reconnect && reconnected) || performance.now() + pause >= deadline) {
        throw this.connectError(conn, `cannot start the command: ${retry.message}`, retry.cause);
      }
      if (retry.reconnect) {
        reconnected = true;
        this.forget(conn, live);
      } else await sleep(pause);
    }
  }

  /**
   * Retires the node's pooled connection: the next exec handshakes again and so re-verifies the
   * pinned host key. Execs already running on the old connection finish (it closes a little later).
   */
  refresh(node: string): Promise<void> {
    const conn = this.conns.get(node);
    const live = conn?.live;
    if (conn === undefined || live === undefined) return Promise.resolve();
    conn.live = undefined;
    setTimeout(() => live.client.end(), RETIRE_AFTER_MS).unref();
    return Promise.resolve();
  }

  async close(): Promise<void> {
    this.closed = true;
    const ready = new Set<Socket>();
    for (const conn of this.conns.values()) {
      // Queued execs wake up, see the pool closed and fail.
      for (const wake of conn.waiting.splice(0)) wake();
      if (conn.live !== undefined) ready.add(conn.live.socket);
      conn.live?.client.end();
    }
    // A polite disconnect for established connections, cut after a second; handshakes are cut now.
    const gone = [...this.sockets].map(
      (socket) =>
        new Promise<void>((resolve) => {
          if (socket.destroyed) {
            resolve();
            return;
          }
          const timer = setTimeout(() => socket.destroy(), 1000);
          socket.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
          if (!ready.has(socket)) socket.destroy();
        }),
    );
    await Promise.all(gone);
  }

  // --- sessions: a FIFO queue so a burst of checks never exceeds the server's MaxSessions ---

  private acquireSession(conn: NodeConn, deadline: number, signal: AbortSignal | undefined): Promise<void> {
    if (conn.active < this.maxSessions) {
      conn.active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const i = conn.waiting.indexOf(wake);
        if (i >= 0) conn.waiting.splice(i, 1);
      };
      const wake = (): void => {
        cleanup();
        if (this.closed) {
          reject(new OkomeError(ErrorCode.Internal, 'ssh: the pool is closed'));
          return;
        }
        conn.active++;
        resolve();
      };
      const onAbort = (): void => {
        cleanup();
        reject(abortError(signal, `ssh ${conn.name}`));
      };
      const timer = setTimeout(
        () => {
          cleanup();
          reject(
            new OkomeError(
              ErrorCode.SshExecTimeout,
              `ssh ${conn.name}: no free session within the deadline (${this.maxSessions} commands already running)`,
              { userSafe: true },
            ),
          );
        },
        Math.max(0, deadline - performance.now()),
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      conn.waiting.push(wake);
    });
  }

  private releaseSession(conn: NodeConn): void {
    conn.active--;
    conn.waiting[0]?.();
  }

  // --- connection: at most one handshake in flight per node; every waiter shares it ---

  private connection(
    conn: NodeConn,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<LiveConnection> {
    if (conn.refusal !== undefined && performance.now() < conn.refusal.until) {
      return Promise.reject(conn.refusal.error);
    }
    if (conn.live !== undefined) return Promise.resolve(conn.live);
    conn.connecting ??= this.handshake(conn).finally(() => {
      conn.connecting = undefined;
    });
    const handshake = conn.connecting;
    // The handshake carries on for others when this caller's deadline passes or it aborts.
    return new Promise<LiveConnection>((resolve, reject) => {
      const settle = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        settle();
        reject(abortError(signal, `ssh ${conn.name}`));
      };
      const timer = setTimeout(
        () => {
          settle();
          reject(this.connectError(conn, 'no connection within the deadline'));
        },
        Math.max(0, deadline - performance.now()),
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      handshake.then(
        (live) => {
          settle();
          resolve(live);
        },
        (error: unknown) => {
          settle();
          reject(error);
        },
      );
    });
  }

  private async handshake(conn: NodeConn): Promise<LiveConnection> {
    const { target } = conn;
    const key = await this.privateKey(conn);
    // The pool may have closed while the key was read: a socket opened now would outlive it.
    if (this.closed) throw new OkomeError(ErrorCode.Internal, 'ssh: the pool is closed');
    const started = performance.now();
    return new Promise<LiveConnection>((resolve, reject) => {
      const client = new Client();
      const socket = new Socket();
      const live: LiveConnection = { client, socket, onLost: new Set(), lastHeard: performance.now() };
      let settled = false;
      let mismatch: OkomeError | undefined;
      const fail = (error: OkomeError): void => {
        if (settled) return;
        settled = true;
        socket.destroy();
        reject(error);
      };
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      // Errors reach ssh2's own listener; this one only keeps a late error from being unhandled.
      socket.on('error', () => undefined);
      // Commands and their replies are small packets: no Nagle delay.
      socket.setNoDelay(true);
      socket.on('data', () => {
        live.lastHeard = performance.now();
      });
      client.on('ready', () => {
        if (settled || this.closed) {
          client.end();
          fail(new OkomeError(ErrorCode.Internal, 'ssh: the pool is closed'));
          return;
        }
        settled = true;
        this.handshakeCount++;
        conn.live = live;
        this.log?.debug({ node: conn.name, ms: Math.round(performance.now() - started) }, 'ssh connected');
        resolve(live);
      });
      client.on('error', (error: Error) => {
        if (settled) {
          this.log?.warn({ node: conn.name, err: error.message }, 'ssh connection error');
          return;
        }
        fail(mismatch ?? this.connectError(conn, describeNetworkError(error), error));
      });
      client.on('close', () => {
        fail(mismatch ?? this.connectError(conn, 'connection closed during the handshake'));
        if (conn.live === live) {
          conn.live = undefined;
          this.log?.info({ node: conn.name }, 'ssh connection closed');
        }
        for (const lost of live.onLost) lost();
      });
      socket.connect({ host: target.address, port: target.ssh.port });
      try {
        client.connect({
          sock: socket,
          username: target.ssh.user,
          privateKey: key,
          readyTimeout: this.options.connectTimeoutMs,
          keepaliveInterval: this.options.keepaliveIntervalMs ?? 10_000,
          keepaliveCountMax: this.options.keepaliveCountMax ?? 3,
          // Runs before authentication: returning false drops the connection with nothing sent.
          hostVerifier: (blob: Buffer): boolean => {
            const seen = sshFingerprint(blob);
            if (seen === target.ssh.hostKey) return true;
            mismatch = new OkomeError(
              ErrorCode.SshHostKeyMismatch,
              `ssh ${conn.name} (${target.address}:${target.ssh.port}): host key ${seen} is not the pinned ${target.ssh.hostKey}; ` +
                'refused before authentication, nothing was run. To resolve, make sure the node was not replaced or ' +
                "intercepted, then pin its key (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) in the node's ssh.hostKey.",
              { userSafe: true },
            );
            // Remembered: every check would otherwise reconnect and be refused again.
            conn.refusal = {
              until: performance.now() + (this.options.hostKeyRefusalMs ?? 60_000),
              error: mismatch,
            };
            this.log?.error({ node: conn.name, pinned: target.ssh.hostKey, seen }, 'ssh host key mismatch');
            return false;
          },
        });
      } catch (error) {
        // ssh2 validates the key synchronously; its message names the format, never the content.
        const reason = error instanceof Error ? error.message : String(error);
        fail(this.connectError(conn, `unusable private key ${this.keyPath(conn)}: ${reason}`, error));
      }
    });
  }

  /** Read once per path; key material is never logged or put in an error. */
  private privateKey(conn: NodeConn): Promise<Buffer> {
    const path = this.keyPath(conn);
    let key = this.keys.get(path);
    if (key === undefined) {
      key = readFile(path);
      this.keys.set(path, key);
      key.catch(() => this.keys.delete(path));
    }
    return key.catch((error: unknown) => {
      const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      throw this.connectError(conn, `cannot read the private key ${path} (${reason})`, error);
    });
  }

  private keyPath(conn: NodeConn): string {
    return conn.target.privateKeyPath ?? conn.target.ssh.privateKeyPath;
  }

  private forget(conn: NodeConn, live: LiveConnection): void {
    if (conn.live === live) conn.live = undefined;
    live.socket.destroy();
  }

  private connectError(conn: NodeConn, reason: string, cause?: unknown): OkomeError {
    const { target } = conn;
    return new OkomeError(
      ErrorCode.SshConnectFailed,
      `ssh ${conn.name} (${target.ssh.user}@${target.address}:${target.ssh.port}): ${reason}`,
      { userSafe: true, cause },
    );
  }

  // --- one command on one channel ---

  private run(
    conn: NodeConn,
    live: LiveConnection,
    command: string,
    started: number,
    deadline: number,
    options: ExecOptions,
  ): Promise<ExecResult> {
    const { signal, onStdout } = options;
    const cap = this.options.maxOutputBytes;
    const drain = this.options.maxDrainBytes ?? 16 * 1024 * 1024;
    return new Promise<ExecResult>((resolve, reject) => {
      const chunks: { stdout: Buffer[]; stderr: Buffer[] } = { stdout: [], stderr: [] };
      let kept = 0;
      let dropped = 0;
      let exit: { code: number | null; signal: string | undefined } | undefined;
      let channel: ClientChannel | undefined;
      let settled = false;

      const result = (): ExecResult => ({
        exitCode: exit?.code ?? null,
        signal: exit?.signal,
        stdout: Buffer.concat(chunks.stdout).toString('utf8'),
        stderr: Buffer.concat(chunks.stderr).toString('utf8'),
        durationMs: performance.now() - started,
        truncated: dropped > 0,
      });
      const finish = (settle: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        live.onLost.delete(onLost);
        settle();
      };
      // Kill the remote process group (OpenSSH honours "signal" requests) and close the channel;
      // the connection itself stays for the next command.
      const stop = (): void => {
        if (channel === undefined) return;
        for (const step of [() => channel?.signal('KILL'), () => channel?.close()]) {
          try {
            step();
          } catch {
            // The connection is already gone.
          }
        }
      };
      const collect = (stream: 'stdout' | 'stderr', chunk: Buffer): void => {
        const room = cap - kept;
        if (chunk.length <= room) {
          chunks[stream].push(chunk);
          kept += chunk.length;
          return;
        }
        if (room > 0) chunks[stream].push(chunk.subarray(0, room));
        kept = cap;
        dropped += chunk.length - Math.max(0, room);
        if (dropped > drain) {
          // Reading on lets a command finish with its exit status; one that never stops is killed.
          stop();
          finish(() => resolve(result()));
        }
      };
      const onAbort = (): void => {
        stop();
        finish(() => reject(abortError(signal, `ssh ${conn.name}`)));
      };
      const onLost = (): void => {
        if (exit !== undefined) {
          finish(() => resolve(result()));
          return;
        }
        finish(() =>
          reject(
            this.connectError(
              conn,
              'connection lost while the command was running (it may or may not have run)',
            ),
          ),
        );
      };
      const timer = setTimeout(
        () => {
          stop();
          // Nothing heard from the server since this command started: the link has stalled (a
          // node that went away, a cable pulled). Retire the connection now, so the next check
          // reconnects at once instead of queueing behind it until keepalive (30 s) notices.
          if (live.lastHeard < started) {
            this.log?.warn({ node: conn.name }, 'ssh connection silent during a command: retired');
            this.forget(conn, live);
          }
          const ms = Math.round(performance.now() - started);
          finish(() =>
            reject(
              new OkomeError(ErrorCode.SshExecTimeout, `ssh ${conn.name}: command timed out after ${ms} ms`, {
                userSafe: true,
              }),
            ),
          );
        },
        Math.max(0, deadline - performance.now()),
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      live.onLost.add(onLost);

      try {
        live.client.exec(command, (error, opened) => {
          if (error !== undefined && error !== null) {
            // ssh2 marks a refused channel open (as opposed to a failed exec request) with `reason`.
            const refused = 'reason' in error && channel === undefined;
            finish(() =>
              reject(
                refused
                  ? new Retry(error.message, false, { cause: error })
                  : this.connectError(conn, `cannot start the command: ${error.message}`, error),
              ),
            );
            return;
          }
          if (settled) {
            // Timed out or aborted while the channel was opening.
            opened.close();
            return;
          }
          channel = opened;
          this.execsByNode.set(conn.name, this.execs(conn.name) + 1);
          this.log?.debug({ node: conn.name, bytes: command.length }, 'ssh exec');
          opened.on('data', (chunk: Buffer) => (onStdout ? onStdout(chunk) : collect('stdout', chunk)));
          opened.stderr.on('data', (chunk: Buffer) => collect('stderr', chunk));
          opened.on('exit', (code: number | null, signalName?: string) => {
            exit = { code: typeof code === 'number' ? code : null, signal: signalName ?? undefined };
          });
          opened.on('close', () => finish(() => resolve(result())));
        });
      } catch (error) {
        // ssh2 throws "Not connected" synchronously when the socket is no longer writable.
        finish(() =>
          reject(new Retry(error instanceof Error ? error.message : String(error), true, { cause: error })),
        );
      }
    });
  }
}
