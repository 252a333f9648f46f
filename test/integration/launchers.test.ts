import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Client } from 'ssh2';
import { afterAll, describe, expect, it } from 'vitest';
import { sshFingerprint } from '../../src/probes/host-key.js';
import { startNginx } from '../support/launchers/nginx.js';
import {
  isProcessAlive,
  processTree,
  stopAllLaunched,
  waitGone,
} from '../support/launchers/process-utils.js';
import { redisPing, startRedisServer } from '../support/launchers/redis-server.js';
import { startSshd } from '../support/launchers/sshd.js';

afterAll(stopAllLaunched);

/** After stop(): none of the PIDs is alive (zombies count as gone) and the directory is gone. */
function expectNothingLeft(pids: readonly number[], dir: string): void {
  expect(pids.length).toBeGreaterThan(0);
  for (const pid of pids) expect(isProcessAlive(pid), `pid ${pid}`).toBe(false);
  expect(existsSync(dir)).toBe(false);
}

function command(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function sshExec(
  server: { host: string; port: number; user: string; clientKeyPath: string },
  pinned: string,
  command: string,
): Promise<{ stdout: string; code: number | null; seenKey: string }> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let seenKey = '';
    client
      .once('ready', () => {
        client.exec(command, (error, stream) => {
          if (error) {
            client.end();
            reject(error);
            return;
          }
          let stdout = '';
          let code: number | null = null;
          stream.on('data', (chunk: Buffer) => {
            stdout += chunk.toString('utf8');
          });
          stream.stderr.resume();
          stream.once('exit', (exitCode: number | null) => {
            code = exitCode;
          });
          stream.once('close', () => {
            client.end();
            resolve({ stdout, code, seenKey });
          });
        });
      })
      // `on`, not `once`: ssh2 can emit a second error (a reset after a refused host key or a
      // killed session), and an error event with no listener is an uncaught exception.
      .on('error', reject)
      .once('close', () => reject(new Error('connection closed')))
      .connect({
        host: server.host,
        port: server.port,
        username: server.user,
        privateKey: readFileSync(server.clientKeyPath),
        readyTimeout: 5000,
        hostVerifier: (key: Buffer) => {
          seenKey = sshFingerprint(key);
          return seenKey === pinned;
        },
      });
  });
}

describe('test launchers', () => {
  it('starts redis-server on a free port, answers PING, and leaves nothing after stop', async () => {
    const redis = await startRedisServer();
    let tree: number[] = [];
    try {
      expect(redis.host).toBe('127.0.0.1');
      expect(await redisPing(redis.port)).toBe(true);
      expect(isProcessAlive(redis.pid)).toBe(true);
      tree = processTree(redis.pid);
    } finally {
      await redis.stop();
    }
    expectNothingLeft(tree, redis.dir);
    expect(await redisPing(redis.port, undefined, 300)).toBe(false);
  });

  it('retries on another port when the chosen one was taken meanwhile (the free-port race)', async () => {
    // Holds the port; whoever connects to it (the readiness check) is hung up on.
    const squatter = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const address = squatter.address();
    const taken = typeof address === 'object' && address !== null ? address.port : 0;
    try {
      const redis = await startRedisServer({ preferredPort: taken });
      try {
        expect(redis.port).not.toBe(taken);
        expect(await redisPing(redis.port)).toBe(true);
      } finally {
        await redis.stop();
      }
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('starts redis-server with a password', async () => {
    const redis = await startRedisServer({ password: 'pw-for-tests' });
    try {
      expect(await redisPing(redis.port, 'pw-for-tests')).toBe(true);
      expect(await redisPing(redis.port)).toBe(false);
    } finally {
      await redis.stop();
    }
    expect(existsSync(redis.dir)).toBe(false);
  });

  it('starts nginx (master and worker), serves HTTP with proxy_cache, and leaves nothing after stop', async () => {
    const nginx = await startNginx();
    let tree: number[] = [];
    try {
      const res = await fetch(nginx.url('/'));
      expect(res.status).toBe(200);
      expect(res.headers.get('x-okome-node')).toBe('test-edge');
      expect(await res.text()).toBe('okome test edge\n');
      const first = await fetch(nginx.url('/cached/a'));
      await first.arrayBuffer();
      const second = await fetch(nginx.url('/cached/a'));
      expect(await second.text()).toBe('origin /origin/a\n');
      expect([first.headers.get('x-cache-status'), second.headers.get('x-cache-status')]).toEqual([
        'MISS',
        'HIT',
      ]);
      tree = processTree(nginx.pid);
      // Master and its worker: a SIGKILL of the master alone would leave the worker serving.
      expect(tree.length).toBeGreaterThanOrEqual(2);
    } finally {
      await nginx.stop();
    }
    expectNothingLeft(tree, nginx.dir);
    await expect(fetch(nginx.url('/'))).rejects.toThrow();
  });

  it('starts sshd with its own host key; an ssh2 exec with the pinned key works; nothing is left after stop', async () => {
    const sshd = await startSshd();
    let tree: number[] = [];
    try {
      expect(sshd.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
      expect(sshd.user).toBe(process.getuid?.() === 0 ? 'okome-test' : expect.any(String));
      const result = await sshExec(sshd, sshd.hostKeyFingerprint, 'id -un; echo $0');
      expect(result).toEqual({ stdout: `${sshd.user}\nsh\n`, code: 0, seenKey: sshd.hostKeyFingerprint });
      // Another pinned key is refused by the verifier.
      await expect(sshExec(sshd, `SHA256:${'A'.repeat(43)}`, 'true')).rejects.toThrow(/verification failed/);
      tree = processTree(sshd.pid);
    } finally {
      await sshd.stop();
    }
    expectNothingLeft(tree, sshd.dir);
  });

  it('kills the sessions sshd forked (they call setsid) on stop, and restarts on the same port', async () => {
    const sshd = await startSshd();
    const pids: number[] = [];
    try {
      const firstPid = sshd.pid;
      // A long command keeps a session process and its child alive under the listener.
      const running = sshExec(sshd, sshd.hostKeyFingerprint, 'sleep 30').catch(() => undefined);
      let tree = processTree(sshd.pid);
      for (let i = 0; i < 250 && !tree.some((pid) => command(pid) === 'sleep'); i++) {
        await new Promise((r) => setTimeout(r, 20));
        tree = processTree(sshd.pid);
      }
      expect(tree.map(command)).toContain('sleep');
      await sshd.restart();
      for (const pid of tree) expect(isProcessAlive(pid), `pid ${pid}`).toBe(false);
      await running;
      expect(sshd.pid).not.toBe(firstPid);
      const result = await sshExec(sshd, sshd.hostKeyFingerprint, 'echo again');
      expect(result.stdout).toBe('again\n');
      pids.push(...tree, ...processTree(sshd.pid));
    } finally {
      await sshd.stop();
    }
    expectNothingLeft(pids, sshd.dir);
  });

  it('fails to start with the server log in the error, and leaves nothing behind', async () => {
    const before = new Set(readdirSync(tmpdir()).filter((name) => name.startsWith('okome-nginx-')));
    const error = await startNginx({ locations: 'location /broken { no_such_directive on; }' }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toContain('nginx exited before it was ready');
    expect(error?.message).toContain('unknown directive "no_such_directive"');
    const after = readdirSync(tmpdir()).filter(
      (name) => name.startsWith('okome-nginx-') && !before.has(name),
    );
    expect(after).toEqual([]);
  });

  it.each(['crash', 'wait'] as const)(
    'leaves nothing behind when a test process ends without stop() (%s)',
    async (mode) => {
      const script = fileURLToPath(new URL('../support/launchers/leak-check-child.ts', import.meta.url));
      const child = spawn(process.execPath, ['--import', 'tsx', script, mode], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      try {
        let out = '';
        let err = '';
        child.stderr.on('data', (chunk: Buffer) => {
          err += chunk.toString();
        });
        const line = await new Promise<string>((resolve, reject) => {
          child.stdout.on('data', (chunk: Buffer) => {
            out += chunk.toString();
            const end = out.indexOf('\n');
            if (end >= 0) resolve(out.slice(0, end));
          });
          child.once('exit', (code) =>
            reject(new Error(`child exited (${String(code)}) before reporting: ${err}`)),
          );
        });
        const servers = JSON.parse(line) as { pid: number; dir: string }[];
        expect(servers).toHaveLength(3);
        // The servers themselves are up; their trees may hold short-lived children (a worker
        // starting, a key being generated), which count only in the check that all are gone.
        expect(servers.every((server) => isProcessAlive(server.pid))).toBe(true);
        const pids = servers.flatMap((server) => processTree(server.pid));
        if (mode === 'wait') child.kill('SIGTERM');
        else child.stdin.write('crash now\n');
        await exited;
        if (mode === 'crash') expect(err).toContain('simulated crash');
        // The exit hook can only send SIGKILL; on a loaded machine the killed servers take a
        // moment to be scheduled and die, so allow them the same bound stopProcessTree does.
        await waitGone(pids, 5000);
        for (const pid of pids) expect(isProcessAlive(pid), `pid ${pid}`).toBe(false);
        for (const server of servers) expect(existsSync(server.dir), server.dir).toBe(false);
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        await exited;
      }
    },
  );
});
