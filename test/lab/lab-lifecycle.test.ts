import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { afterAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { attachLab, type Lab, REPO_ROOT } from '../support/lab/lab.js';
import { defaultRoutes, listLabNamespaces } from '../support/lab/network.js';
import { run, waitFor } from '../support/lab/process-runner.js';
import { downLab, isAlive, labProcesses } from '../support/lab/teardown.js';
import { LAB_SUBNET, PI_NODES, RUN_DIR, STATE_FILE } from '../support/lab/topology.js';
import { describeLab } from '../support/lab/vitest-lab.js';

const CLI = 'test/support/lab/lab-cli.ts';
const EXPECTED_NAMESPACES = ['okl-sw', 'okl-pi-a', 'okl-pi-b', 'okl-orch', 'okl-bot'];

/** Everything down() must leave behind: nothing. Returns what is left, for a readable failure. */
async function leftovers(workDir: string, pids: readonly number[]): Promise<string[]> {
  const left: string[] = [];
  const namespaces = await listLabNamespaces();
  if (namespaces.length > 0) left.push(`namespaces: ${namespaces.join(', ')}`);
  const alive: number[] = [];
  for (const pid of pids) if (await isAlive(pid)) alive.push(pid);
  if (alive.length > 0) left.push(`processes: ${alive.join(', ')}`);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.includes('okl-') || line.includes(workDir) || line.includes('okome-lab'));
  if (mounts.length > 0) left.push(`mounts: ${mounts.join(' | ')}`);
  if (existsSync(RUN_DIR)) left.push(`${RUN_DIR} exists`);
  if (existsSync(workDir)) left.push(`work dir ${workDir} exists`);
  if ((await run('ip', ['link', 'show', 'okl-host'])).code === 0) left.push('okl-host exists');
  if ((await run('ip', ['route', 'show', LAB_SUBNET])).stdout.trim() !== '')
    left.push(`a route to ${LAB_SUBNET}`);
  return left;
}

describeLab('lab lifecycle', () => {
  let lab: Lab | undefined;
  let upMs = 0;

  afterAll(async () => {
    await downLab();
  });

  it('`npm run lab -- up` comes up in under 10 s with the VIP on pi-a; status reports it', async () => {
    const started = performance.now();
    const up = await run(process.execPath, ['--import', 'tsx', CLI, 'up'], {
      cwd: REPO_ROOT,
      timeoutMs: 30_000,
    });
    upMs = performance.now() - started;
    expect(up.code, up.stderr).toBe(0);
    const reported = /lab up in ([\d.]+) s/.exec(up.stdout)?.[1];
    console.info(
      `[lab] set-up took ${reported ?? '?'} s (${(upMs / 1000).toFixed(2)} s with the CLI's own start)`,
    );
    expect(upMs).toBeLessThan(10_000);
    expect(up.stdout).toMatch(/^bot config: \/tmp\/okome-lab-\w+\/okome\.lab\.yml$/m);
    expect(up.stdout).toContain('VIP 10.86.0.18: pi-a');
    lab = await attachLab();
    expect(await lab.vipHolders()).toEqual(['pi-a']);
    expect((await listLabNamespaces()).sort()).toEqual([...EXPECTED_NAMESPACES].sort());
    const status = await run(process.execPath, ['--import', 'tsx', CLI, 'status'], { cwd: REPO_ROOT });
    expect(status.stdout).toMatch(
      /^pi-a \(10\.86\.0\.20\): ssh=active nginx=active okome-prewarm\.timer=active keepalived=active$/m,
    );
    expect(status.stdout).toMatch(
      /^pi-b \(10\.86\.0\.19\): ssh=active redis-server=active nginx=active keepalived=active$/m,
    );
  });

  it('gives no namespace a default route and joins the root namespace to okl-bot only', async () => {
    if (lab === undefined) throw new Error('lab did not start');
    expect(await defaultRoutes()).toEqual([]);
    // Asked of the routing table, so no packet is sent: the lab subnet is unreachable from root.
    const rootRoute = await run('ip', ['route', 'get', lab.addresses.vip]);
    expect(`${rootRoute.stdout}${rootRoute.stderr}`).toMatch(/unreachable|No route/i);
    expect((await run('ip', ['route', 'get', lab.botAddress])).stdout).toContain('dev okl-host');
    expect((await lab.execOk('bot', ['sysctl', '-n', 'net.ipv4.ip_forward'])).trim()).toBe('0');
    const ping = await run('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--max-time',
      '2',
      `http://${lab.botAddress}:1/`,
    ]);
    // Connection refused (nothing listens on port 1) proves the link answers, not a timeout.
    expect(ping.code).toBe(7);
  });

  it('writes a bot configuration that loadConfig accepts, pinning the nodes’ real host keys', async () => {
    if (lab === undefined) throw new Error('lab did not start');
    const config = loadConfig(lab.configPath);
    expect(config.nodes.map((n) => [n.name, n.address, n.ssh.user])).toEqual([
      ['pi-a', '10.86.0.20', 'okome'],
      ['pi-b', '10.86.0.19', 'okome'],
    ]);
    expect(config.vip.address).toBe('10.86.0.18');
    expect(config.redis.host).toBe('10.86.0.19');
    expect(config.orchestrator.baseUrl).toBe('http://10.86.0.25:8000');
    for (const node of config.nodes) {
      const printed = await lab.execOk(
        node.name === 'pi-a' ? 'pi-a' : 'pi-b',
        'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub',
      );
      expect(printed.split(' ')[1]).toBe(node.ssh.hostKey);
    }
  });

  it('gives each Pi its own hostname and files while the host’s stay untouched', async () => {
    if (lab === undefined) throw new Error('lab did not start');
    for (const node of PI_NODES) {
      expect((await lab.execOk(node, 'hostname')).trim()).toBe(node);
      expect(await lab.execOk(node, 'head -n 2 /etc/nginx/nginx.conf')).toContain(`(${node})`);
      expect((await lab.execOk(node, 'command -v systemctl')).trim()).toBe('/usr/local/bin/systemctl');
    }
    await lab.execOk('pi-a', 'touch /etc/okome/only-on-pi-a');
    expect((await lab.exec('pi-b', 'test -e /etc/okome/only-on-pi-a')).code).toBe(1);
    expect(existsSync('/etc/okome')).toBe(false);
    expect(existsSync('/usr/local/bin/systemctl')).toBe(false);
    expect(readFileSync('/etc/nginx/nginx.conf', 'utf8')).not.toContain('okome');
  });

  it('down leaves no namespace, process, mount or file behind', async () => {
    if (lab === undefined) throw new Error('lab did not start');
    const pids = await labProcesses();
    expect(pids.length).toBeGreaterThan(10);
    const workDir = lab.workDir;
    const down = await run(process.execPath, ['--import', 'tsx', CLI, 'down'], { cwd: REPO_ROOT });
    expect(down.code, down.stderr).toBe(0);
    console.info(`[lab] ${down.stdout.trim()}`);
    expect(await leftovers(workDir, pids)).toEqual([]);
    // Idempotent: a second down finds nothing and fails on nothing.
    const again = await downLab();
    expect(again).toEqual({ killed: 0, namespaces: [], workDirs: [] });
  });

  it('down cleans up a half-built lab whose `up` was killed', async () => {
    const cli = spawn(process.execPath, ['--import', 'tsx', CLI, 'up'], {
      cwd: REPO_ROOT,
      stdio: 'ignore',
    });
    // Kill it once the nodes are being built: namespaces and the nodes' holder processes exist
    // (recorded in the state file before their daemons start), the lab is not ready yet.
    await waitFor(
      'the killed lab to get half-way',
      async () => {
        const up = (await run('ip', ['-n', 'okl-pi-b', 'link', 'show', 'eth0'])).code === 0;
        const state = up && existsSync(STATE_FILE) ? readFileSync(STATE_FILE, 'utf8') : '';
        return /"pi-b": \d+/.test(state) ? true : undefined;
      },
      10_000,
      20,
    );
    cli.kill('SIGKILL');
    await new Promise((resolve) => cli.once('exit', resolve));
    const state = JSON.parse(readFileSync(`${RUN_DIR}/state.json`, 'utf8')) as { workDir: string };
    const pids = await labProcesses();
    expect((await listLabNamespaces()).length).toBeGreaterThan(0);
    const report = await downLab();
    expect(report.namespaces.length).toBeGreaterThan(0);
    expect(await leftovers(state.workDir, pids)).toEqual([]);
  });
});
