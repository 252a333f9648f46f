import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResolvedNode } from '../../src/config/load-config.js';
import { ErrorCode, type OkomeError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import { SshPool, type SshPoolOptions, type SshTarget, sshTargets } from '../../src/probes/ssh-pool.js';
import { freePort } from '../support/launchers/free-port.js';
import { isProcessAlive, processTree, stopAllLaunched } from '../support/launchers/process-utils.js';
import { type SshdServer, startSshd } from '../support/launchers/sshd.js';

const WRONG_KEY = `SHA256:${'A'.repeat(43)}`;

let sshd: SshdServer;

beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(stopAllLaunched);

function target(server: SshdServer, overrides: { port?: number; hostKey?: string } = {}): SshTarget {
  return {
    address: server.host,
    ssh: {
      port: overrides.port ?? server.port,
      user: server.user,
      privateKeyPath: server.clientKeyPath,
      hostKey: overrides.hostKey ?? server.hostKeyFingerprint,
    },
  };
}

function makePool(t: SshTarget, options: Partial<SshPoolOptions> = {}): SshPool {
  return new SshPool(new Map([['pi-a', t]]), {
    connectTimeoutMs: 3000,
    maxOutputBytes: 1024 * 1024,
    ...options,
  });
}

async function rejection(promise: Promise<unknown>): Promise<OkomeError> {
  try {
    await promise;
  } catch (error) {
    return error as OkomeError;
  }
  throw new Error('expected a rejection');
}

/** Processes under the listener whose command is `name` (the sessions' children). */
function remoteProcesses(name: string): number[] {
  return processTree(sshd.pid).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === name && isProcessAlive(pid);
    } catch {
      return false;
    }
  });
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/** A TCP relay to sshd whose current connections can be frozen, like a link that went dead. */
async function startRelay(
  port: number,
): Promise<{ port: number; connections: () => number; freeze: () => void; stop: () => Promise<void> }> {
  const pairs = new Set<readonly [Socket, Socket]>();
  let connections = 0;
  const server = createServer((downstream) => {
    connections++;
    const upstream = connect({ host: '127.0.0.1', port });
    const pair = [downstream, upstream] as const;
    pairs.add(pair);
    const end = (): void => {
      downstream.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    for (const socket of pair) socket.on('error', end).on('close', end);
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    connections: () => connections,
    freeze: () => {
      for (const [downstream, upstream] of pairs) {
        downstream.unpipe(upstream);
        upstream.unpipe(downstream);
        downstream.pause();
        upstream.pause();
      }
    },
    stop: async () => {
      for (const pair of pairs) for (const socket of pair) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('SshPool against a real sshd', () => {
  it('returns stdout, stderr and the exit code', async () => {
    const pool = makePool(target(sshd));
    try {
      const result = await pool.exec('pi-a', 'echo out; echo err >&2; exit 3', { timeoutMs: 5000 });
      expect(result).toMatchObject({
        exitCode: 3,
        signal: undefined,
        stdout: 'out\n',
        stderr: 'err\n',
        truncated: false,
      });
      expect(result.durationMs).toBeGreaterThan(0);
      const me = await pool.exec('pi-a', 'id -un', { timeoutMs: 5000 });
      expect(me.stdout).toBe(`${sshd.user}\n`);
      expect(pool.handshakes()).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('runs 20 parallel execs over exactly one handshake, queueing beyond the session limit', async () => {
    const pool = makePool(target(sshd));
    try {
      // 20 > OpenSSH's MaxSessions (10): without the queue the extra channels would be refused.
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          pool.exec('pi-a', `sleep 0.1; echo ${i}`, { timeoutMs: 10_000 }),
        ),
      );
      expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 20 }, (_, i) => `${i}\n`));
      expect(results.every((r) => r.exitCode === 0)).toBe(true);
      expect(pool.handshakes()).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('never has more channels open than maxSessionsPerNode', async () => {
    const pool = makePool(target(sshd), { maxSessionsPerNode: 2 });
    try {
      const started = performance.now();
      await Promise.all(
        Array.from({ length: 6 }, () => pool.exec('pi-a', 'sleep 0.15', { timeoutMs: 10_000 })),
      );
      // Three rounds of two.
      expect(performance.now() - started).toBeGreaterThanOrEqual(3 * 150);
    } finally {
      await pool.close();
    }
  });

  it('reconnects on the next exec after sshd restarts (connection killed)', async () => {
    const lines: string[] = [];
    const logger = createLogger({
      level: 'info',
      destination: { write: (line: string) => lines.push(line) },
    });
    const pool = makePool(target(sshd), { logger });
    try {
      expect((await pool.exec('pi-a', 'echo one', { timeoutMs: 5000 })).stdout).toBe('one\n');
      await sshd.restart();
      // The old connection's close arrives asynchronously, like a gap between checks: wait for it.
      expect(await waitFor(() => lines.some((l) => l.includes('"msg":"ssh connection closed"')), 5000)).toBe(
        true,
      );
      expect((await pool.exec('pi-a', 'echo two', { timeoutMs: 5000 })).stdout).toBe('two\n');
      expect(pool.handshakes()).toBe(2);
      expect((await pool.exec('pi-a', 'echo three', { timeoutMs: 5000 })).stdout).toBe('three\n');
      expect(pool.handshakes()).toBe(2);
    } finally {
      await pool.close();
    }
  });

  it('keepalive notices a dead link: the running exec fails fast and the next one reconnects', async () => {
    const relay = await startRelay(sshd.port);
    const pool = makePool(target(sshd, { port: relay.port }), {
      keepaliveIntervalMs: 100,
      keepaliveCountMax: 2,
    });
    try {
      expect((await pool.exec('pi-a', 'echo one', { timeoutMs: 5000 })).stdout).toBe('one\n');
      const dir = await mkdtemp(join(tmpdir(), 'okome-running-'));
      await chmod(dir, 0o777);
      const marker = join(dir, 'running');
      const running = rejection(
        pool.exec('pi-a', `touch ${marker}; sleep 10; echo late`, { timeoutMs: 5000 }),
      );
      // The link dies while the command runs, not before it reached sshd.
      expect(await waitFor(() => existsSync(marker), 5000)).toBe(true);
      await rm(dir, { recursive: true, force: true });
      const started = performance.now();
      relay.freeze();
      const error = await running;
      expect(error.code).toBe(ErrorCode.SshConnectFailed);
      expect(error.message).toContain('connection lost');
      // Well before the exec's own 5 s deadline: about three keepalive intervals.
      expect(performance.now() - started).toBeLessThan(1500);
      expect((await pool.exec('pi-a', 'echo two', { timeoutMs: 5000 })).stdout).toBe('two\n');
      expect(pool.handshakes()).toBe(2);
    } finally {
      await pool.close();
      await relay.stop();
      // The session's sleep must not outlive the test: a later one counts remote sleeps.
      await waitFor(() => remoteProcesses('sleep').length === 0, 15_000);
    }
  });

  it('an exec that times out on a silent link retires the connection: the next one reconnects at once', async () => {
    const relay = await startRelay(sshd.port);
    // Keepalive far away: only the retirement can save the next exec.
    const pool = makePool(target(sshd, { port: relay.port }), { keepaliveIntervalMs: 60_000 });
    try {
      expect((await pool.exec('pi-a', 'echo one', { timeoutMs: 5000 })).stdout).toBe('one\n');
      relay.freeze(); // the link stalls: nothing more reaches either side
      const error = await rejection(pool.exec('pi-a', 'echo lost', { timeoutMs: 300 }));
      expect(error.code).toBe(ErrorCode.SshExecTimeout);
      // Before the fix the next exec queued on the stalled connection and timed out too.
      expect((await pool.exec('pi-a', 'echo two', { timeoutMs: 5000 })).stdout).toBe('two\n');
      expect(pool.handshakes()).toBe(2);
    } finally {
      await pool.close();
      await relay.stop();
    }
  });

  it('refuses a wrong host key before authentication: no command runs, and it stays refused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'okome-marker-'));
    const marker = join(dir, 'marker');
    try {
      await chmod(dir, 0o777);
      const relay = await startRelay(sshd.port);
      const pool = makePool(target(sshd, { hostKey: WRONG_KEY, port: relay.port }), {
        hostKeyRefusalMs: 60_000,
      });
      try {
        const error = await rejection(pool.exec('pi-a', `touch ${marker}`, { timeoutMs: 5000 }));
        expect(error.code).toBe(ErrorCode.SshHostKeyMismatch);
        expect(error.message).toContain(sshd.hostKeyFingerprint);
        expect(pool.handshakes()).toBe(0);
        const log = (): string => readFileSync(join(sshd.dir, 'sshd.log'), 'utf8');
        // sshd logs the refused client's disconnect; each new connection would add such a line.
        expect(await waitFor(() => log().includes('[preauth]'), 2000)).toBe(true);
        const logBefore = log();
        // Refused from memory: no reconnect. A reconnect would be counted by the relay before
        // the exec could fail, so the count proves it without waiting.
        expect(relay.connections()).toBe(1);
        const again = await rejection(pool.exec('pi-a', `touch ${marker}`, { timeoutMs: 5000 }));
        expect(again.code).toBe(ErrorCode.SshHostKeyMismatch);
        expect(relay.connections()).toBe(1);
        expect(log().slice(logBefore.length)).toBe('');
      } finally {
        await pool.close();
        await relay.stop();
      }
      expect(existsSync(marker)).toBe(false);
      // Control: with the right key the same command does create the file.
      const good = makePool(target(sshd));
      try {
        await good.exec('pi-a', `touch ${marker}`, { timeoutMs: 5000 });
      } finally {
        await good.close();
      }
      expect(existsSync(marker)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('times out a hung command quickly, kills it, and keeps the connection usable', async () => {
    const pool = makePool(target(sshd));
    try {
      await pool.exec('pi-a', 'true', { timeoutMs: 5000 });
      const started = performance.now();
      const error = await rejection(pool.exec('pi-a', 'sleep 10', { timeoutMs: 300 }));
      const elapsed = performance.now() - started;
      expect(error.code).toBe(ErrorCode.SshExecTimeout);
      expect(elapsed).toBeGreaterThanOrEqual(290);
      expect(elapsed).toBeLessThan(800);
      expect((await pool.exec('pi-a', 'echo still', { timeoutMs: 5000 })).stdout).toBe('still\n');
      expect(pool.handshakes()).toBe(1);
      // The remote sleep got the KILL signal rather than running on for 10 s.
      expect(await waitFor(() => remoteProcesses('sleep').length === 0, 2000)).toBe(true);
    } finally {
      await pool.close();
    }
  });

  it('stops on AbortSignal with OKOME_ABORTED, or a timeout for AbortSignal.timeout()', async () => {
    const pool = makePool(target(sshd));
    try {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      const aborted = await rejection(
        pool.exec('pi-a', 'sleep 10', { timeoutMs: 5000, signal: controller.signal }),
      );
      expect(aborted.code).toBe(ErrorCode.Aborted);
      const timedOut = await rejection(
        pool.exec('pi-a', 'sleep 10', { timeoutMs: 5000, signal: AbortSignal.timeout(100) }),
      );
      expect(timedOut.code).toBe(ErrorCode.SshExecTimeout);
      const already = await rejection(
        pool.exec('pi-a', 'true', { timeoutMs: 5000, signal: AbortSignal.abort() }),
      );
      expect(already.code).toBe(ErrorCode.Aborted);
      expect((await pool.exec('pi-a', 'echo ok', { timeoutMs: 5000 })).stdout).toBe('ok\n');
    } finally {
      await pool.close();
    }
  });

  it('caps the output: truncated, at most maxOutputBytes kept, the exit status still read', async () => {
    const cap = 64 * 1024;
    const pool = makePool(target(sshd), { maxOutputBytes: cap });
    try {
      const result = await pool.exec('pi-a', "head -c 2000000 /dev/zero | tr '\\0' a", { timeoutMs: 10_000 });
      expect(result.truncated).toBe(true);
      expect(result.stdout.length).toBeLessThanOrEqual(cap);
      expect(result.stdout.length).toBeGreaterThan(cap - 1024);
      expect(/^a+$/.test(result.stdout)).toBe(true);
      expect(result.exitCode).toBe(0);
      const small = await pool.exec('pi-a', 'head -c 1000 /dev/zero | tr "\\0" b', { timeoutMs: 5000 });
      expect(small).toMatchObject({ truncated: false, exitCode: 0 });
      expect(small.stdout.length).toBe(1000);
    } finally {
      await pool.close();
    }
  });

  it('kills a command that never stops writing once maxDrainBytes were dropped', async () => {
    const pool = makePool(target(sshd), { maxOutputBytes: 4096, maxDrainBytes: 256 * 1024 });
    try {
      const result = await pool.exec('pi-a', 'yes', { timeoutMs: 10_000 });
      expect(result.truncated).toBe(true);
      expect(result.stdout.length).toBe(4096);
      expect(result.exitCode).toBeNull();
      expect(result.durationMs).toBeLessThan(5000);
      expect(await waitFor(() => remoteProcesses('yes').length === 0, 2000)).toBe(true);
    } finally {
      await pool.close();
    }
  });

  it('fails with OKOME_SSH_CONNECT_FAILED on a closed port, within the connect timeout', async () => {
    const port = await freePort();
    const pool = makePool(target(sshd, { port }), { connectTimeoutMs: 1000 });
    try {
      const started = performance.now();
      const error = await rejection(pool.exec('pi-a', 'true', { timeoutMs: 5000 }));
      expect(error.code).toBe(ErrorCode.SshConnectFailed);
      expect(error.message).toContain('connection refused');
      expect(performance.now() - started).toBeLessThan(1000);
    } finally {
      await pool.close();
    }
  });

  it('fails with OKOME_SSH_CONNECT_FAILED when the server accepts but never speaks SSH', async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => {
      sockets.add(socket);
      socket.resume();
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const pool = makePool(target(sshd, { port }), { connectTimeoutMs: 300 });
    try {
      const started = performance.now();
      // 20 callers share the one handshake attempt.
      const errors = await Promise.all(
        Array.from({ length: 20 }, () => rejection(pool.exec('pi-a', 'true', { timeoutMs: 5000 }))),
      );
      const elapsed = performance.now() - started;
      expect(errors.every((e) => e.code === ErrorCode.SshConnectFailed)).toBe(true);
      expect(errors[0]?.message).toContain('handshake timed out');
      expect(elapsed).toBeGreaterThanOrEqual(290);
      expect(elapsed).toBeLessThan(1000);
      expect(sockets.size).toBe(1);
    } finally {
      await pool.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('a connect slower than the exec deadline fails at the deadline', async () => {
    const silent = createServer((socket) => socket.resume());
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const pool = makePool(target(sshd, { port }), { connectTimeoutMs: 5000 });
    try {
      const started = performance.now();
      const error = await rejection(pool.exec('pi-a', 'true', { timeoutMs: 200 }));
      expect(error.code).toBe(ErrorCode.SshConnectFailed);
      expect(performance.now() - started).toBeLessThan(600);
    } finally {
      await pool.close();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('fails clearly for an unreadable private key and an unknown node', async () => {
    const pool = new SshPool(
      { 'pi-b': { ...target(sshd), ssh: { ...target(sshd).ssh, privateKeyPath: '/nonexistent/key' } } },
      { connectTimeoutMs: 1000, maxOutputBytes: 1024 },
    );
    try {
      const error = await rejection(pool.exec('pi-b', 'true', { timeoutMs: 2000 }));
      expect(error.code).toBe(ErrorCode.SshConnectFailed);
      expect(error.message).toContain('/nonexistent/key (ENOENT)');
      expect((await rejection(pool.exec('nope', 'true', { timeoutMs: 2000 }))).code).toBe(ErrorCode.Internal);
    } finally {
      await pool.close();
    }
  });

  it('takes configured nodes as they are, by name', async () => {
    // Type-checked: a ResolvedNode from the config loader is a target without any mapping.
    const fromConfig = (nodes: readonly ResolvedNode[]): Map<string, SshTarget> => sshTargets(nodes);
    expect(fromConfig).toBeTypeOf('function');
    const pool = new SshPool(sshTargets([{ name: 'pi-b', ...target(sshd) }]), {
      connectTimeoutMs: 3000,
      maxOutputBytes: 1024,
    });
    try {
      expect((await pool.exec('pi-b', 'echo b', { timeoutMs: 5000 })).stdout).toBe('b\n');
    } finally {
      await pool.close();
    }
  });

  it('close() ends the connection: the session processes on the server go away', async () => {
    const pool = makePool(target(sshd));
    // Track this connection's own session processes: other tests' sessions may still be ending.
    const before = new Set(processTree(sshd.pid));
    await pool.exec('pi-a', 'true', { timeoutMs: 5000 });
    const mine = processTree(sshd.pid).filter((pid) => !before.has(pid) && isProcessAlive(pid));
    expect(mine.length).toBeGreaterThan(0);
    await pool.close();
    expect(await waitFor(() => mine.every((pid) => !isProcessAlive(pid)), 2000)).toBe(true);
    expect((await rejection(pool.exec('pi-a', 'true', { timeoutMs: 1000 }))).code).toBe(ErrorCode.Internal);
  });
});
