import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { type CommandPurpose, commandPurposes, defaultCommands } from '../../src/config/schema.js';
import { parseIptables } from '../../src/domain/parse/index.js';
import type { FaultHandle } from '../support/lab/faults.js';
import { type Lab, startLab } from '../support/lab/lab.js';
import { knownHostsLine, readKeyPair } from '../support/lab/ssh-keys.js';
import { ASSETS_DIR } from '../support/lab/templates.js';
import { PI_NODES, type PiNode } from '../support/lab/topology.js';
import { describeLab } from '../support/lab/vitest-lab.js';

const PID_FILES = {
  nginx: '/run/nginx.pid',
  keepalived: '/run/keepalived.pid',
  sshd: '/run/sshd.pid',
  redis: '/run/redis/redis-server.pid',
} as const;

async function pids(lab: Lab): Promise<Record<string, number | undefined>> {
  const out: Record<string, number | undefined> = {};
  for (const node of PI_NODES) {
    for (const [name, file] of Object.entries(PID_FILES))
      out[`${node}/${name}`] = await lab.mainPid(node, file);
  }
  return out;
}

interface SshBench {
  readonly connectMedianMs: number;
  readonly warmTrueMedianMs: number;
  readonly warmIsActiveMedianMs: number;
  readonly parallel9Ms: number;
  readonly isActive: string;
  readonly parallelCodes: readonly number[];
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

describeLab('lab nodes over SSH', () => {
  let lab: Lab;
  let fault: FaultHandle | undefined;

  beforeAll(async () => {
    lab = await startLab();
  });
  afterEach(async () => {
    await fault?.revert();
    fault = undefined;
  });
  afterAll(async () => {
    await lab?.down();
  });

  it('answers hostname, ip -o addr show and systemctl is-active nginx per node, VIP on pi-a only', async () => {
    for (const node of PI_NODES) {
      const result = await lab.ssh(node, 'hostname; id -un; ip -o addr show; systemctl is-active nginx');
      expect(result.code).toBe(0);
      const [hostname, user, ...rest] = result.stdout.trim().split('\n');
      expect(hostname).toBe(node);
      expect(user).toBe('okome');
      expect(rest.join('\n')).toContain(`inet ${lab.addresses[node]}/24`);
      expect(rest.join('\n').includes(`inet ${lab.addresses.vip}/`)).toBe(node === 'pi-a');
      expect(rest.at(-1)).toBe('active');
    }
  });

  it('runs every production command string verbatim on each node', async () => {
    const config = loadConfig(lab.configPath);
    for (const node of config.nodes) {
      for (const purpose of commandPurposes) {
        // The ones that change a node (the drills' stop and start among them) run in their own tests.
        if (
          purpose === 'serviceRestart' ||
          purpose === 'serviceStop' ||
          purpose === 'serviceStart' ||
          purpose === 'firewallFlush' ||
          purpose === 'chaosFlagRemove'
        )
          continue;
        const command = defaultCommands[purpose as CommandPurpose].replaceAll('{service}', 'nginx');
        const result = await lab.ssh(node.name as PiNode, command);
        // nginx -T reports "syntax is ok" on stderr, as on a real Pi; anything from sudo or the
        // shell (not allowed, not found, denied) would be a lab bug.
        const complaint = /sudo:|not found|denied|No such file/i.test(result.stderr) ? result.stderr : '';
        // pi-b runs no prewarm timer: systemctl answers "could not be found", exit 4, as systemd does.
        const expectedCode =
          purpose === 'prewarmTimer' && !node.services.includes('okome-prewarm.timer') ? 4 : 0;
        expect({ node: node.name, command, code: result.code, complaint }).toEqual({
          node: node.name,
          command,
          code: expectedCode,
          complaint: '',
        });
      }
    }
    const timer = await lab.ssh('pi-a', defaultCommands.prewarmTimer);
    expect(timer.stdout).toMatch(/^● okome-prewarm\.timer - /);
    expect(timer.stdout).toMatch(
      /^ {5}Active: active \(waiting\) since \w{3} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC; /m,
    );
    expect(timer.stdout).toMatch(/^ {4}Trigger: /m);
    const status = await lab.ssh('pi-b', 'systemctl status redis-server --no-pager');
    expect(status.stdout).toMatch(/^ {3}Main PID: \d+ \(redis-server\)$/m);
    const journal = await lab.ssh('pi-a', defaultCommands.journalTail);
    expect(journal.stdout).toMatch(
      /^\w{3} \d\d \d\d:\d\d:\d\d pi-a Keepalived_vrrp\[\d+\]: \(VI_1\) Entering MASTER STATE$/m,
    );
    const chaos = await lab.ssh('pi-a', defaultCommands.chaosFlag);
    expect(chaos.stdout.trim()).toBe('absent');
  });

  it('sudo systemctl restart nginx restarts that node’s nginx and nothing else', async () => {
    const before = await pids(lab);
    const result = await lab.ssh('pi-b', 'sudo systemctl restart nginx');
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const after = await pids(lab);
    expect(after['pi-b/nginx']).toBeDefined();
    expect(after['pi-b/nginx']).not.toBe(before['pi-b/nginx']);
    const { 'pi-b/nginx': _a, ...othersBefore } = before;
    const { 'pi-b/nginx': _b, ...othersAfter } = after;
    expect(othersAfter).toEqual(othersBefore);
    expect((await lab.ssh('pi-b', 'systemctl is-active nginx')).stdout.trim()).toBe('active');
  });

  it('refuses sudo for anything but the catalogue, and systemctl without sudo', async () => {
    const refused = [
      'sudo -n id',
      'sudo -n cat /etc/shadow',
      'sudo -n systemctl stop nginx',
      // The drills' stop and start name keepalived and redis-server only.
      'sudo -n systemctl start nginx',
      'sudo -n systemctl stop ssh',
      'sudo -n systemctl stop redis-server', // pi-a runs no Redis: not in its sudoers
      'sudo -n systemctl restart ssh',
      'sudo -n systemctl restart redis-server',
      'sudo -n rm -rf /etc/okome',
      'sudo -n iptables -A INPUT -j DROP',
      'sudo -n iptables -t nat -A OUTPUT -j ACCEPT',
      'sudo -n iptables-save -f /etc/okome/rules',
      'sudo -n iptables -S',
      'sudo -n nginx -s stop',
      'sudo -n sh -c id',
    ];
    for (const command of refused) {
      const result = await lab.ssh('pi-a', command);
      expect({ command, code: result.code }).toEqual({ command, code: 1 });
      expect(result.stderr).toMatch(/password is required|not allowed/);
    }
    const plain = await lab.ssh('pi-a', 'systemctl restart nginx');
    expect(plain.code).toBe(1);
    expect(plain.stderr).toContain('Failed to restart nginx.service: Access denied');
    const allowed = await lab.ssh(
      'pi-a',
      'sudo -n iptables-save >/dev/null && sudo -n rm -f /etc/okome/CHAOS_ENABLE && sudo -n nginx -T >/dev/null',
    );
    expect(allowed.code).toBe(0);
  });

  it('refuses a wrong pinned host key before any command is sent', async () => {
    const wrong = join(lab.workDir, 'known_hosts.wrong');
    const piB = await readKeyPair(join(lab.nodePaths('pi-b').etc, 'ssh', 'ssh_host_ed25519_key'));
    await writeFile(wrong, `${knownHostsLine(lab.addresses['pi-a'], piB.publicLine)}\n`);
    await lab.exec('pi-a', 'rm -f /home/okome/sent');
    const result = await lab.ssh('pi-a', 'touch /home/okome/sent', { knownHostsFile: wrong });
    expect(result.code).toBe(255);
    expect(result.stderr).toMatch(/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/);
    expect((await lab.exec('pi-a', 'test -e /home/okome/sent')).code).toBe(1);
    expect((await lab.ssh('pi-a', 'touch /home/okome/sent')).code).toBe(0);
    expect((await lab.exec('pi-a', 'test -e /home/okome/sent')).code).toBe(0);
  });

  it('fault host-key-change: the pinned key no longer matches until reverted', async () => {
    const pinned = loadConfig(lab.configPath).nodes.find((n) => n.name === 'pi-b')?.ssh.hostKey;
    fault = await lab.fault('host-key-change', { node: 'pi-b' });
    expect(fault.details.fingerprint).toMatch(/^SHA256:/);
    expect(fault.details.fingerprint).not.toBe(pinned);
    await lab.exec('pi-b', 'rm -f /home/okome/sent');
    const refused = await lab.ssh('pi-b', 'touch /home/okome/sent');
    expect(refused.code).toBe(255);
    expect(refused.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
    expect((await lab.exec('pi-b', 'test -e /home/okome/sent')).code).toBe(1);
    await fault.revert();
    expect((await lab.ssh('pi-b', 'hostname')).stdout.trim()).toBe('pi-b');
  });

  it('fault service-stop: redis-cli gets no PONG and systemctl says inactive until reverted', async () => {
    fault = await lab.fault('service-stop', { node: 'pi-b', service: 'redis-server' });
    const ping = await lab.redis(['PING']);
    expect(ping.stdout.trim()).not.toBe('PONG');
    const state = await lab.ssh('pi-b', 'systemctl is-active redis-server');
    expect({ code: state.code, out: state.stdout.trim() }).toEqual({ code: 3, out: 'inactive' });
    await fault.revert();
    expect((await lab.redis(['PING'])).stdout.trim()).toBe('PONG');
    expect((await lab.ssh('pi-b', 'systemctl is-active redis-server')).stdout.trim()).toBe('active');
  });

  it('fault chaos: flag, iptables rules (filter and nat) and a stopped service, all seen over SSH; the catalogue clears it', async () => {
    fault = await lab.fault('chaos', { node: 'pi-b', service: 'redis-server' });
    const seen = await lab.ssh(
      'pi-b',
      `test -e /etc/okome/CHAOS_ENABLE && echo present || echo absent; ${defaultCommands.firewallRules}; systemctl is-active redis-server`,
    );
    expect(seen.stdout).toContain('present');
    expect(seen.stdout).toContain('-A INPUT -p tcp -m tcp --dport 6380 -j DROP');
    // The parser the bot uses sees the nat rule too (iptables -S would not).
    const rules = parseIptables((await lab.ssh('pi-b', defaultCommands.firewallRules)).stdout, []);
    expect(rules).toMatchObject({
      kind: 'iptables',
      unexpected: expect.arrayContaining([
        '-A INPUT -p tcp -m tcp --dport 6380 -j DROP',
        '-t nat -A OUTPUT -p tcp -m tcp --dport 6380 -j REDIRECT --to-ports 9',
      ]),
    });
    expect(seen.stdout.trim().split('\n').at(-1)).toBe('inactive');
    // A dropped port times out (exit 28) where a closed one is refused at once (exit 7).
    const blocked = await lab.curl(['-o', '/dev/null', '--max-time', '1', 'telnet://10.86.0.19:6380']);
    expect(blocked.code).toBe(28);
    // What the bot's disable-chaos action runs, verbatim, as the lab user.
    const cleared = await lab.ssh(
      'pi-b',
      `${defaultCommands.chaosFlagRemove} && ${defaultCommands.firewallFlush} && sudo systemctl restart redis-server`,
    );
    expect(cleared.code).toBe(0);
    expect(parseIptables((await lab.ssh('pi-b', defaultCommands.firewallRules)).stdout, [])).toMatchObject({
      kind: 'iptables',
      unexpected: [],
    });
    expect(
      (await lab.ssh('pi-b', 'test -e /etc/okome/CHAOS_ENABLE && echo present || echo absent')).stdout.trim(),
    ).toBe('absent');
    expect((await lab.redis(['PING'])).stdout.trim()).toBe('PONG');
    const closed = await lab.curl(['-o', '/dev/null', '--max-time', '1', 'telnet://10.86.0.19:6380']);
    expect(closed.code).toBe(7);
    // Applied again and reverted by the fault itself.
    await fault.revert();
    fault = await lab.fault('chaos', { node: 'pi-b', service: 'redis-server' });
    await fault.revert();
    expect((await lab.ssh('pi-b', defaultCommands.firewallRules)).stdout).not.toContain('6380');
    expect((await lab.redis(['PING'])).stdout.trim()).toBe('PONG');
  });

  it('measures SSH costs: OpenSSH per command, OpenSSH ControlMaster, ssh2 new and warm', async () => {
    const time = async (fn: () => Promise<unknown>) => {
      const started = performance.now();
      await fn();
      return performance.now() - started;
    };
    const fresh: number[] = [];
    for (let i = 0; i < 5; i += 1) fresh.push(await time(() => lab.ssh('pi-a', 'systemctl is-active nginx')));
    await lab.ssh('pi-a', 'true', { controlMaster: true });
    const warm: number[] = [];
    for (let i = 0; i < 10; i += 1) {
      warm.push(await time(() => lab.ssh('pi-a', 'systemctl is-active nginx', { controlMaster: true })));
    }
    await lab.exec('bot', lab.sshArgv('pi-a', 'true', { controlMaster: true }).toSpliced(1, 0, '-O', 'exit'));
    const config = loadConfig(lab.configPath);
    const piA = config.nodes.find((n) => n.name === 'pi-a');
    if (piA === undefined) throw new Error('pi-a missing from the lab config');
    const bench = async (mode: 'nodelay' | 'nagle') =>
      JSON.parse(
        await lab.execOk('bot', [
          process.execPath,
          join(ASSETS_DIR, 'ssh-bench.mjs'),
          piA.address,
          piA.ssh.user,
          piA.privateKeyPath,
          piA.ssh.hostKey,
          '20',
          mode,
        ]),
      ) as SshBench;
    const ssh2 = await bench('nodelay');
    const ssh2Nagle = await bench('nagle');
    const figures = {
      opensshNewConnectionPerCommandMs: Math.round(median(fresh)),
      opensshControlMasterWarmMs: Math.round(median(warm)),
      ssh2: ssh2,
      ssh2WithoutNoDelay: ssh2Nagle,
    };
    console.info(`[lab] SSH costs as the lab user: ${JSON.stringify(figures)}`);
    expect(ssh2.isActive).toBe('active');
    expect(ssh2.parallelCodes).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // Generous bounds: these catch a lab user whose shell became expensive, not machine noise.
    expect(ssh2.warmIsActiveMedianMs).toBeLessThan(100);
    expect(figures.opensshControlMasterWarmMs).toBeLessThan(200);
  });
});
