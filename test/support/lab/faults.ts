import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from './lab.js';
import { switchPortOf } from './network.js';
import { run, runOk, sleep, waitFor } from './process-runner.js';
import {
  HOST_LINK,
  LAB_ADDRESSES,
  type LabNode,
  namespaceOf,
  type PiNode,
  PORTS,
  SWITCH_NAMESPACE,
} from './topology.js';

/**
 * Reversible faults. Each has an apply and a revert that needs nothing but the lab and the
 * same parameters, so the CLI can revert from another process (`fault NAME --revert`).
 * Reverts of faults that move the VIP wait until pi-a holds it again, so the next test starts
 * from the lab's normal state.
 */
export interface FaultParams {
  /** Stop a unit with the lab systemctl (a clean stop: the unit reads "inactive"). */
  'service-stop': { node?: PiNode; service?: string };
  /** SIGKILL keepalived's parent and VRRP child: the VIP copy stays behind (split brain). */
  'keepalived-kill': { node?: PiNode };
  /** Take the switch-side end of a node's link down (carrier lost on its eth0). */
  'link-down': { node?: LabNode };
  /**
   * A dead Pi as it looks from outside: the switch drops every frame to and from the node (its
   * bridge port disabled) while the link keeps its carrier, as a hung or panicked Pi's NIC does.
   * From the bot indistinguishable from link-down (ARP unanswered, SSH and HTTP time out); only
   * the node itself sees the difference (no carrier loss, so its keepalived stays MASTER).
   */
  'node-dead': { node?: PiNode };
  /**
   * Every sshd (sessions too) and nginx process of the node SIGKILLed: the host is up and
   * answers SSH and HTTP with resets; keepalived runs on and gives the VIP away (track script).
   */
  'daemons-killed': { node?: PiNode };
  /**
   * The bot's namespace cut from the lab switch (its switch port down): the bot reaches no Pi,
   * no VIP, no orchestrator. Its point-to-point link to the root namespace (Slack) stays up.
   */
  'bot-isolated': Record<string, never>;
  /**
   * The chaos flag, iptables rules and a stopped service on one node. `tables`: where the rules
   * go (default both): a DROP in filter, and a REDIRECT in nat that `iptables -S` cannot see.
   */
  chaos: { node?: PiNode; service?: string; port?: number; tables?: readonly ('filter' | 'nat')[] };
  'orchestrator-down': Record<string, never>;
  'orchestrator-503': Record<string, never>;
  'orchestrator-slow': { delayMs?: number };
  /** Delete the four streaming directives from the node's nginx.conf and reload nginx. */
  'streaming-directives-removed': { node?: PiNode };
  /** okome:budget:rl:{agent}:{window} counters, some at or over the limit. */
  'budget-runaway': { counts?: Readonly<Record<string, number>>; ttlSec?: number };
  /** A burst of GETs of absent keys (and a few hits) so Redis's hit ratio drops. */
  'redis-miss-storm': { misses?: number; hits?: number };
  /** Replace a node's SSH host key and restart its sshd; revert restores the original. */
  'host-key-change': { node?: PiNode };
}
export type FaultName = keyof FaultParams;
export const FAULT_NAMES = [
  'service-stop',
  'keepalived-kill',
  'link-down',
  'node-dead',
  'daemons-killed',
  'bot-isolated',
  'chaos',
  'orchestrator-down',
  'orchestrator-503',
  'orchestrator-slow',
  'streaming-directives-removed',
  'budget-runaway',
  'redis-miss-storm',
  'host-key-change',
] as const satisfies readonly FaultName[];

export function isFaultName(name: string): name is FaultName {
  return (FAULT_NAMES as readonly string[]).includes(name);
}

export interface FaultHandle {
  readonly name: FaultName;
  /** What the fault did, for assertions and the CLI (e.g. the keys written). */
  readonly details: Readonly<Record<string, unknown>>;
  /** Undoes the fault; a second call does nothing. */
  revert(): Promise<void>;
}

export const CHAOS_FLAG = '/etc/okome/CHAOS_ENABLE';
export const CHAOS_PORT = 6380;
export const BUDGET_LIMIT = 60;
export const BUDGET_WINDOW_SEC = 60;
/** Counters written by budget-runaway by default: two agents at/over the limit, two under. */
export const DEFAULT_BUDGET_COUNTS: Readonly<Record<string, number>> = Object.freeze({
  'planner-1': 60,
  'planner-2': 75,
  'planner-3': 12,
  'indexer-1': 3,
});
export const MISS_STORM_HIT_KEY = 'okome:model_meta:lab-hit';
export const STREAMING_DIRECTIVES = [
  'proxy_buffering off;',
  'proxy_request_buffering off;',
  'proxy_read_timeout 600s;',
  'proxy_send_timeout 600s;',
] as const;
const HOST_KEY = '/etc/ssh/ssh_host_ed25519_key';
const ORCHESTRATOR_HEALTH = `http://${LAB_ADDRESSES.orch}:${PORTS.orchestrator}/health`;

function chaosService(node: PiNode, service: string | undefined): string {
  return service ?? (node === 'pi-b' ? 'redis-server' : 'nginx');
}

/** The chaos rules as `iptables` arguments after -A/-D, per table. */
function chaosRules(port: number, tables: readonly ('filter' | 'nat')[] = ['filter', 'nat']): string[][] {
  const rules: Record<'filter' | 'nat', string[]> = {
    filter: ['INPUT', '-p', 'tcp', '--dport', String(port), '-j', 'DROP'],
    // nat refuses DROP; redirecting the node's own connections to the chaos port to discard is
    // as harmless here and only seen by reading the nat table.
    nat: ['-t', 'nat', 'OUTPUT', '-p', 'tcp', '--dport', String(port), '-j', 'REDIRECT', '--to-ports', '9'],
  };
  return tables.map((t) => rules[t]);
}

/** `-t nat OUTPUT …` + verb → `-t nat -A OUTPUT …`: the table option goes before the verb's chain. */
function iptablesArgs(verb: '-A' | '-D', rule: readonly string[]): string[] {
  return rule[0] === '-t' ? [rule[0], rule[1] ?? '', verb, ...rule.slice(2)] : [verb, ...rule];
}

function assertService(service: string): string {
  if (!/^[a-z0-9.-]+$/.test(service)) throw new Error(`not a unit name: ${service}`);
  return service;
}

/**
 * Waits until pi-a alone holds the VIP again, but only when it can: tests may apply several
 * faults and revert them in any order (keepalived stopped on both, pi-b's reverted first), and
 * while another fault keeps pi-a from the VIP, waiting would only time out.
 */
async function waitForBaseline(lab: Lab): Promise<void> {
  const [keepalivedA, nginxA, keepalivedB, port, bridgePort] = await Promise.all([
    lab.unitState('pi-a', 'keepalived'),
    lab.unitState('pi-a', 'nginx'),
    lab.unitState('pi-b', 'keepalived'),
    run('ip', ['-n', SWITCH_NAMESPACE, '-o', 'link', 'show', switchPortOf('pi-a')]),
    run('bridge', ['-n', SWITCH_NAMESPACE, 'link', 'show', 'dev', switchPortOf('pi-a')]),
  ]);
  // Up and forwarding: node-dead leaves the link up with the bridge port disabled.
  const linkUp = /<[^>]*\bUP\b[^>]*>/.test(port.stdout) && /state forwarding/.test(bridgePort.stdout);
  // A hard-killed keepalived on pi-b ("failed") leaves its VIP copy behind until restarted.
  if (keepalivedA !== 'active' || nginxA !== 'active' || keepalivedB === 'failed' || !linkUp) return;
  await lab.waitForVip(['pi-a'], 20_000);
}

/** The current rate-limit window: floor(unix seconds / window length). */
export function budgetWindow(nowMs: number = Date.now()): number {
  return Math.floor(nowMs / 1000 / BUDGET_WINDOW_SEC);
}

async function apply(
  lab: Lab,
  name: FaultName,
  params: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  switch (name) {
    case 'service-stop': {
      const p = params as FaultParams['service-stop'];
      const node = p.node ?? 'pi-a';
      const service = assertService(p.service ?? 'nginx');
      await lab.execOk(node, ['systemctl', 'stop', service]);
      return { node, service };
    }
    case 'keepalived-kill': {
      const node = (params as FaultParams['keepalived-kill']).node ?? 'pi-a';
      const parent = await lab.mainPid(node, '/run/keepalived.pid');
      const child = await lab.mainPid(node, '/run/keepalived-vrrp.pid');
      if (parent === undefined || child === undefined) {
        throw new Error(`keepalived (and its VRRP child) is not running on ${node}`);
      }
      // A hard crash: neither process may remove the VIP. The child is frozen first: when its
      // parent dies it is sent a signal it would handle (dropping the VIP) if it got to run, and
      // a loaded machine can let it run between two kills; a stopped process only dies.
      process.kill(child, 'SIGSTOP');
      process.kill(parent, 'SIGKILL');
      process.kill(child, 'SIGKILL');
      return { node, killed: [parent, child] };
    }
    case 'link-down': {
      const node = (params as FaultParams['link-down']).node ?? 'pi-a';
      await runOk('ip', ['-n', SWITCH_NAMESPACE, 'link', 'set', switchPortOf(node), 'down']);
      return { node, port: `${SWITCH_NAMESPACE}/${switchPortOf(node)}` };
    }
    case 'node-dead': {
      const node = (params as FaultParams['node-dead']).node ?? 'pi-a';
      // STP port state 0 (disabled): the bridge forwards nothing on that port; carrier stays up.
      await runOk('bridge', ['-n', SWITCH_NAMESPACE, 'link', 'set', 'dev', switchPortOf(node), 'state', '0']);
      return { node, port: `${SWITCH_NAMESPACE}/${switchPortOf(node)}`, state: 'disabled' };
    }
    case 'daemons-killed': {
      const node = (params as FaultParams['daemons-killed']).node ?? 'pi-a';
      const killed = await killNodeProcesses(node, DAEMONS_KILLED);
      if (killed.length === 0) throw new Error(`no sshd or nginx process found on ${node}`);
      return { node, killed };
    }
    case 'bot-isolated':
      await runOk('ip', ['-n', SWITCH_NAMESPACE, 'link', 'set', switchPortOf('bot'), 'down']);
      return { port: `${SWITCH_NAMESPACE}/${switchPortOf('bot')}`, kept: HOST_LINK.botInterface };
    case 'chaos': {
      const p = params as FaultParams['chaos'];
      const node = p.node ?? 'pi-a';
      const service = assertService(chaosService(node, p.service));
      const port = p.port ?? CHAOS_PORT;
      const rules = chaosRules(port, p.tables).map((r) => iptablesArgs('-A', r));
      await lab.execOk(node, ['touch', CHAOS_FLAG]);
      for (const rule of rules) await lab.execOk(node, ['iptables', ...rule]);
      await lab.execOk(node, ['systemctl', 'stop', service]);
      return { node, service, flag: CHAOS_FLAG, rules: rules.map((r) => r.join(' ')) };
    }
    case 'orchestrator-down':
      await lab.setOrchestratorMode('down');
      return { mode: 'down' };
    case 'orchestrator-503':
      await lab.setOrchestratorMode('503');
      return { mode: '503' };
    case 'orchestrator-slow': {
      const delayMs = (params as FaultParams['orchestrator-slow']).delayMs ?? 1500;
      await lab.setOrchestratorMode('slow', delayMs);
      return { mode: 'slow', delayMs };
    }
    case 'streaming-directives-removed': {
      const node = (params as FaultParams['streaming-directives-removed']).node ?? 'pi-a';
      const sedArgs = STREAMING_DIRECTIVES.flatMap((d) => ['-e', `/${d.replace(/ /g, '[[:space:]]*')}/d`]);
      await lab.execOk(node, ['sed', '-i', ...sedArgs, '/etc/nginx/nginx.conf']);
      await reloadNginx(lab, node);
      return { node, removed: [...STREAMING_DIRECTIVES] };
    }
    case 'budget-runaway': {
      const p = params as FaultParams['budget-runaway'];
      const counts = p.counts ?? DEFAULT_BUDGET_COUNTS;
      // Keys expire after the window plus 2 s; starting within 5 s of a window's end would let
      // a test's window roll over under it, so wait for the next one.
      const secondInWindow = Math.floor(Date.now() / 1000) % BUDGET_WINDOW_SEC;
      if (secondInWindow >= BUDGET_WINDOW_SEC - 5)
        await sleep((BUDGET_WINDOW_SEC - secondInWindow) * 1000 + 50);
      const window = budgetWindow();
      const ttl = p.ttlSec ?? BUDGET_WINDOW_SEC + 2;
      const keys: Record<string, number> = {};
      const lines = Object.entries(counts).map(([agent, count]) => {
        if (!/^[A-Za-z0-9_-]+$/.test(agent)) throw new Error(`not an agent name: ${agent}`);
        const key = `okome:budget:rl:${agent}:${window}`;
        keys[key] = count;
        return `SET ${key} ${Math.trunc(count)} EX ${Math.trunc(ttl)}`;
      });
      await redisBatch(lab, lines);
      return {
        window,
        limit: BUDGET_LIMIT,
        keys,
        runaway: Object.keys(counts).filter((a) => (counts[a] ?? 0) >= BUDGET_LIMIT),
      };
    }
    case 'redis-miss-storm': {
      const p = params as FaultParams['redis-miss-storm'];
      const misses = p.misses ?? 2000;
      const hits = p.hits ?? 100;
      const tag = Date.now().toString(36);
      const lines = [`SET ${MISS_STORM_HIT_KEY} lab EX 600`];
      for (let i = 0; i < hits; i += 1) lines.push(`GET ${MISS_STORM_HIT_KEY}`);
      for (let i = 0; i < misses; i += 1) lines.push(`GET okome:planner:lab:${tag}-${i}:none:none`);
      await redisBatch(lab, lines);
      return { hits, misses };
    }
    case 'host-key-change': {
      const node = (params as FaultParams['host-key-change']).node ?? 'pi-a';
      await lab.execOk(node, ['rm', '-f', HOST_KEY, `${HOST_KEY}.pub`]);
      await lab.execOk(node, [
        'ssh-keygen',
        '-q',
        '-t',
        'ed25519',
        '-N',
        '',
        '-C',
        `root@${node}-new`,
        '-f',
        HOST_KEY,
      ]);
      await lab.execOk(node, ['systemctl', 'restart', 'ssh']);
      const fingerprint = (await lab.execOk(node, ['ssh-keygen', '-l', '-f', `${HOST_KEY}.pub`])).split(
        ' ',
      )[1];
      return { node, fingerprint };
    }
  }
}

async function revert(lab: Lab, name: FaultName, params: Record<string, unknown>): Promise<void> {
  switch (name) {
    case 'service-stop': {
      const p = params as FaultParams['service-stop'];
      await lab.execOk(p.node ?? 'pi-a', ['systemctl', 'start', assertService(p.service ?? 'nginx')]);
      await waitForBaseline(lab);
      return;
    }
    case 'keepalived-kill':
      // What an operator does (and what the bot's action does): restart keepalived. It removes
      // the stale VIP as it starts, then preemption gives the VIP back to pi-a.
      await lab.execOk((params as FaultParams['keepalived-kill']).node ?? 'pi-a', [
        'systemctl',
        'restart',
        'keepalived',
      ]);
      await waitForBaseline(lab);
      return;
    case 'link-down': {
      const node = (params as FaultParams['link-down']).node ?? 'pi-a';
      await runOk('ip', ['-n', SWITCH_NAMESPACE, 'link', 'set', switchPortOf(node), 'up']);
      await waitForBaseline(lab);
      return;
    }
    case 'node-dead': {
      const node = (params as FaultParams['node-dead']).node ?? 'pi-a';
      await runOk('bridge', ['-n', SWITCH_NAMESPACE, 'link', 'set', 'dev', switchPortOf(node), 'state', '3']);
      await waitForBaseline(lab);
      return;
    }
    case 'daemons-killed': {
      const node = (params as FaultParams['daemons-killed']).node ?? 'pi-a';
      await lab.execOk(node, ['systemctl', 'start', 'ssh']);
      await lab.execOk(node, ['systemctl', 'start', 'nginx']);
      await waitForBaseline(lab);
      return;
    }
    case 'bot-isolated':
      await runOk('ip', ['-n', SWITCH_NAMESPACE, 'link', 'set', switchPortOf('bot'), 'up']);
      // The next test starts once the bot reaches the lab again (carrier back, neighbours resolved).
      await waitFor(
        'the bot to reach the orchestrator again',
        async () =>
          (await lab.curl(['-fsS', '-o', '/dev/null', '--max-time', '1', ORCHESTRATOR_HEALTH])).code === 0
            ? true
            : undefined,
        10_000,
        100,
      );
      return;
    case 'chaos': {
      const p = params as FaultParams['chaos'];
      const node = p.node ?? 'pi-a';
      await lab.execOk(node, ['rm', '-f', CHAOS_FLAG]);
      // Delete our rules only (iptables -D fails when one is gone already, e.g. after a flush).
      for (const rule of chaosRules(p.port ?? CHAOS_PORT, p.tables)) {
        await lab.exec(node, ['iptables', ...iptablesArgs('-D', rule)]);
      }
      await lab.execOk(node, ['systemctl', 'start', assertService(chaosService(node, p.service))]);
      await waitForBaseline(lab);
      return;
    }
    case 'orchestrator-down':
    case 'orchestrator-503':
    case 'orchestrator-slow':
      await lab.setOrchestratorMode('healthy');
      return;
    case 'streaming-directives-removed': {
      const node = (params as FaultParams['streaming-directives-removed']).node ?? 'pi-a';
      await lab.execOk(node, [
        'cp',
        join(lab.nodePaths(node).pristine, 'nginx.conf'),
        '/etc/nginx/nginx.conf',
      ]);
      await reloadNginx(lab, node);
      return;
    }
    case 'budget-runaway': {
      const keys = await redisScan(lab, 'okome:budget:rl:*');
      if (keys.length > 0)
        await redisBatch(
          lab,
          keys.map((key) => `DEL ${key}`),
        );
      return;
    }
    case 'redis-miss-storm':
      await redisBatch(lab, [`DEL ${MISS_STORM_HIT_KEY}`, 'CONFIG RESETSTAT']);
      return;
    case 'host-key-change': {
      const node = (params as FaultParams['host-key-change']).node ?? 'pi-a';
      const pristine = lab.nodePaths(node).pristine;
      await lab.execOk(node, [
        'cp',
        join(pristine, 'ssh_host_ed25519_key'),
        join(pristine, 'ssh_host_ed25519_key.pub'),
        '/etc/ssh/',
      ]);
      await lab.execOk(node, ['chmod', '600', HOST_KEY]);
      await lab.execOk(node, ['systemctl', 'restart', 'ssh']);
      return;
    }
  }
}

/** Process names daemons-killed kills: sshd's listener and sessions (OpenSSH ≥ 9.8 splits them), nginx. */
const DAEMONS_KILLED: ReadonlySet<string> = new Set(['sshd', 'sshd-session', 'sshd-auth', 'nginx']);

/** SIGKILLs the node's processes with these names, found by PID in the node's namespace. */
async function killNodeProcesses(node: PiNode, names: ReadonlySet<string>): Promise<string[]> {
  const pids = (await runOk('ip', ['netns', 'pids', namespaceOf(node)])).stdout
    .split(/\s+/)
    .filter((p) => /^\d+$/.test(p));
  // Every target found first, then all killed in one go, SSH before the services: a kill spread
  // over seconds on a loaded machine would let keepalived give the VIP away (nginx gone) while
  // SSH still answers, which is another failure than "up but refusing".
  const targets: { pid: number; comm: string }[] = [];
  for (const pid of pids) {
    let comm: string;
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      continue; // Gone already (a session that ended).
    }
    if (names.has(comm)) targets.push({ pid: Number(pid), comm });
  }
  targets.sort((a, b) => Number(b.comm.startsWith('sshd')) - Number(a.comm.startsWith('sshd')));
  const killed: string[] = [];
  for (const { pid, comm } of targets) {
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(`${comm}[${pid}]`);
    } catch {
      // Gone already: nothing to kill.
    }
  }
  return killed;
}

/**
 * Reloads nginx and waits for a worker started after the reload: new connections go to new
 * workers, which have the new config (old ones only drain their open connections).
 */
async function reloadNginx(lab: Lab, node: PiNode): Promise<void> {
  const master = await lab.mainPid(node, '/run/nginx.pid');
  const workersOf = async (): Promise<string[]> => {
    if (master === undefined) return [];
    const text = await run('cat', [`/proc/${master}/task/${master}/children`]);
    return text.stdout
      .trim()
      .split(/\s+/)
      .filter((s) => s !== '');
  };
  const before = await workersOf();
  await lab.execOk(node, ['systemctl', 'reload', 'nginx']);
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const now = await workersOf();
    if (now.some((pid) => !before.includes(pid))) return;
    await sleep(25);
  }
  throw new Error(`nginx on ${node} started no new worker after reload`);
}

/** Sends Redis commands (one per line) from pi-b itself, where Redis listens on 127.0.0.1. */
async function redisBatch(lab: Lab, lines: readonly string[]): Promise<void> {
  const result = await lab.exec('pi-b', ['redis-cli', '-h', '127.0.0.1', '-p', '6379'], {
    input: `${lines.join('\n')}\n`,
  });
  if (result.code !== 0 || /^ERR/m.test(result.stdout)) {
    throw new Error(
      `redis-cli failed (exit ${result.code}): ${(result.stderr || result.stdout).slice(0, 500)}`,
    );
  }
}

async function redisScan(lab: Lab, pattern: string): Promise<string[]> {
  const result = await lab.exec('pi-b', ['redis-cli', '-h', '127.0.0.1', '--scan', '--pattern', pattern]);
  return result.stdout.split('\n').filter((line) => line.trim() !== '');
}

/** Applies a fault; the handle's revert() undoes it (once). */
export async function applyFault<N extends FaultName>(
  lab: Lab,
  name: N,
  params?: FaultParams[N],
): Promise<FaultHandle> {
  const p = (params ?? {}) as Record<string, unknown>;
  const details = await apply(lab, name, p);
  let reverted = false;
  return {
    name,
    details,
    async revert() {
      if (reverted) return;
      reverted = true;
      await revert(lab, name, p);
    },
  };
}

/** Reverts a fault applied earlier, possibly by another process (the CLI). */
export function revertFault<N extends FaultName>(lab: Lab, name: N, params?: FaultParams[N]): Promise<void> {
  return revert(lab, name, (params ?? {}) as Record<string, unknown>);
}
