import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchingShell } from '../../src/diagnostics/batching-shell.js';
import { ErrorCode, OkomeError } from '../../src/errors.js';
import type { ExecResult } from '../../src/probes/ports.js';
import { SshPool, type SshTarget } from '../../src/probes/ssh-pool.js';
import { stopAllLaunched } from '../support/launchers/process-utils.js';
import { type SshdServer, startSshd } from '../support/launchers/sshd.js';

/**
 * The batch script through a real sshd and sh: each command's result is what one exec of it
 * gives, whatever it prints, in one channel per node.
 */

let sshd: SshdServer;
beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(stopAllLaunched);

const CAP = 4096;

function pool(hostKey?: string): SshPool {
  const target: SshTarget = {
    address: sshd.host,
    ssh: {
      port: sshd.port,
      user: sshd.user,
      privateKeyPath: sshd.clientKeyPath,
      hostKey: hostKey ?? sshd.hostKeyFingerprint,
    },
  };
  return new SshPool(new Map([['pi-a', target]]), { connectTimeoutMs: 3000, maxOutputBytes: CAP });
}

const settle = (p: Promise<ExecResult>) =>
  p.then(
    (r) => ({ exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, truncated: r.truncated }),
    (e: OkomeError) => ({ error: e.code }),
  );

/**
 * This test's batch directories: those of its sshd's login user. The lab, which may run at the
 * same time, logs in as another user and leaves its own short-lived directories in /dev/shm.
 */
const batchDirs = () => {
  const uid = Number(execFileSync('id', ['-u', sshd.user], { encoding: 'utf8' }).trim());
  return readdirSync('/dev/shm').filter(
    (n) =>
      n.startsWith('okome-batch.') && statSync(join('/dev/shm', n), { throwIfNoEntry: false })?.uid === uid,
  );
};

describe('batched read-only commands over ssh', () => {
  it('gives every command the result one exec of it gives, in one channel', async () => {
    const commands = [
      'printf absent',
      'echo okome0000 0 0 5 5; printf "okome0000 end\\n"',
      'echo only-stderr >&2',
      'true',
      'exit 1',
      'echo inactive; exit 3',
      'exit 255',
      `head -c ${CAP + CAP / 2} /dev/zero | tr "\\0" x; echo tail >&2`,
      'cat /proc/meminfo',
      'test -e /nonexistent && echo present || echo absent',
    ];
    const direct = pool();
    const batched = pool();
    const shell = new BatchingShell(batched, { maxOutputBytes: CAP });
    try {
      const one = await Promise.all(commands.map((c) => settle(direct.exec('pi-a', c, { timeoutMs: 5000 }))));
      const before = batched.execs('pi-a');
      const many = await Promise.all(commands.map((c) => settle(shell.exec('pi-a', c, { timeoutMs: 5000 }))));
      expect(batched.execs('pi-a') - before).toBe(1);
      // /proc/meminfo moves between two reads: compare its shape, everything else exactly.
      const meminfo = commands.indexOf('cat /proc/meminfo');
      const shape = (r: (typeof many)[number]) =>
        'stdout' in r ? { ...r, stdout: r.stdout.replace(/\s*\d+/g, ' N') } : r;
      expect(shape(many[meminfo] as (typeof many)[number])).toEqual(
        shape(one[meminfo] as (typeof one)[number]),
      );
      expect(many.filter((_, i) => i !== meminfo)).toEqual(one.filter((_, i) => i !== meminfo));
      expect(many[7]).toMatchObject({ truncated: true, exitCode: 0 });
      await expect.poll(batchDirs).toEqual([]);
    } finally {
      await Promise.all([direct.close(), batched.close()]);
    }
  });

  it('kills a command at its timeout on the node (exit 124 → timeout) while the others report at once', async () => {
    const p = pool();
    const shell = new BatchingShell(p, { maxOutputBytes: CAP });
    try {
      // Connected first: the times below are the batch's, not the handshake's.
      await p.exec('pi-a', 'true', { timeoutMs: 5000 });
      const t0 = performance.now();
      let fastAt = 0;
      const fast = shell.exec('pi-a', 'echo quick', { timeoutMs: 5000 }).then((r) => {
        fastAt = performance.now() - t0;
        return r;
      });
      const slow = settle(shell.exec('pi-a', 'sleep 30', { timeoutMs: 1000 }));
      expect((await fast).stdout).toBe('quick\n');
      expect(await slow).toEqual({ error: ErrorCode.SshExecTimeout });
      const total = performance.now() - t0;
      // Streamed: the quick frame did not wait for the slow command.
      expect(fastAt).toBeLessThan(500);
      expect(total).toBeLessThan(2500);
      expect(p.execs('pi-a')).toBe(2);
      await expect.poll(batchDirs).toEqual([]);
    } finally {
      await p.close();
    }
  });

  it('a batch that cannot run reports each of its commands with the reason', async () => {
    const p = pool(`SHA256:${'A'.repeat(43)}`);
    const shell = new BatchingShell(p, { maxOutputBytes: CAP });
    try {
      const results = await Promise.all(
        ['df -P /', 'cat /proc/meminfo'].map((c) => settle(shell.exec('pi-a', c, { timeoutMs: 3000 }))),
      );
      expect(results).toEqual([
        { error: ErrorCode.SshHostKeyMismatch },
        { error: ErrorCode.SshHostKeyMismatch },
      ]);
    } finally {
      await p.close();
    }
  });

  it('a command that ignores TERM is reported timed out at its deadline, and the batch still ends clean', async () => {
    const p = pool();
    const shell = new BatchingShell(p, { maxOutputBytes: CAP });
    try {
      const results = await Promise.all([
        settle(shell.exec('pi-a', 'echo early', { timeoutMs: 1500 })),
        settle(shell.exec('pi-a', "trap '' TERM; sleep 30", { timeoutMs: 1500 })),
      ]);
      expect(results[0]).toMatchObject({ stdout: 'early\n', exitCode: 0 });
      expect(results[1]).toEqual({ error: ErrorCode.SshExecTimeout });
      // Reported by the node's timeout (1.2 s) with the script ending on its own: its trap
      // removed its directory (a channel the bot kills leaves it, as the next test shows).
      await expect.poll(batchDirs).toEqual([]);
    } finally {
      await p.close();
    }
  });

  it('a batch cut short (its channel killed) fails the commands that had not reported', async () => {
    const p = pool();
    const shell = new BatchingShell(p, { maxOutputBytes: CAP });
    try {
      const giveUp = new AbortController();
      const early = settle(shell.exec('pi-a', 'echo early', { timeoutMs: 5000 }));
      const late = settle(shell.exec('pi-a', 'sleep 30', { timeoutMs: 5000, signal: giveUp.signal }));
      expect(await early).toMatchObject({ stdout: 'early\n', exitCode: 0 });
      // Every caller has given up: the bot kills the batch's channel.
      giveUp.abort(new OkomeError(ErrorCode.SshExecTimeout, 'given up'));
      expect(await late).toEqual({ error: ErrorCode.SshExecTimeout });
      // Killed outright, it could not clean up: the next batch removes what it left.
      await expect.poll(batchDirs).toHaveLength(1);
      await Promise.all(['true', 'true'].map((c) => shell.exec('pi-a', c, { timeoutMs: 3000 })));
      await expect.poll(batchDirs).toEqual([]);
    } finally {
      await p.close();
    }
  });
});
