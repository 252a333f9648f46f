import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, open, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labAvailability } from './availability.js';
import { buildBotConfig, writeBotConfig } from './bot-config.js';
import { applyFault, type FaultHandle, type FaultName, type FaultParams } from './faults.js';
import { type LabState, readLabState, writeLabState } from './lab-state.js';
import { assertNoDefaultRoute, createNetwork } from './network.js';
import { nodePaths, writeNodeFiles } from './node-files.js';
import { type RunResult, run, runOk, sleep, waitFor } from './process-runner.js';
import { generateKeyPair, knownHostsLine, readKeyPair } from './ssh-keys.js';
import { downLab, isAlive } from './teardown.js';
import { ASSETS_DIR } from './templates.js';
import {
  DEFAULT_NOTIFY_URL,
  HOST_LINK,
  LAB_ADDRESSES,
  type LabAddresses,
  type LabNode,
  namespaceOf,
  PI_NODES,
  type PiNode,
  PORTS,
  SSH_USER,
  WORK_DIR_MARKER,
  WORK_DIR_PREFIX,
} from './topology.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export interface LabOptions {
  /** Where keepalived's notify scripts POST; a listener in okl-bot. Default DEFAULT_NOTIFY_URL. */
  readonly notifyUrl?: string;
  /** VRRP advert interval in seconds (production: 1; `up` then waits ≈ 3.4 s for the VIP). */
  readonly advertInt?: number;
  /** Prewarm loop period in seconds (production: 120). */
  readonly prewarmIntervalSec?: number;
  /** Progress lines (the CLI prints them). */
  readonly log?: (line: string) => void;
}

export type OrchestratorMode = 'healthy' | 'down' | '503' | 'slow';

export interface OrchestratorState {
  readonly mode: OrchestratorMode;
  readonly delayMs: number;
  readonly served: number;
  readonly byPath: Readonly<Record<string, number>>;
  readonly listening: boolean;
}

export interface SshOptions {
  /** A known_hosts file other than the lab's (e.g. one pinning a wrong key). */
  readonly knownHostsFile?: string;
  /** Reuse one OpenSSH master connection per node (ControlMaster/ControlPersist). */
  readonly controlMaster?: boolean;
  readonly timeoutMs?: number;
}

const NODE_ENV_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function notifyUrlOk(url: string): string {
  // It is written into a shell-sourced env file on each node: allow URL characters only.
  if (!/^http:\/\/[A-Za-z0-9.:/_-]+$/.test(url))
    throw new Error(`notifyUrl must be a plain http URL, got ${url}`);
  return url;
}

function orchestratorRequest(
  socketPath: string,
  method: string,
  path: string,
  body?: string,
): Promise<OrchestratorState> {
  return new Promise((resolvePromise, reject) => {
    const req = request({ socketPath, method, path, timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => {
        if (res.statusCode !== 200)
          reject(new Error(`orchestrator control ${method} ${path}: ${res.statusCode} ${text}`));
        else resolvePromise(JSON.parse(text) as OrchestratorState);
      });
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('orchestrator control timed out')));
    req.end(body);
  });
}

/**
 * A running lab. Built by startLab (which owns it) or attachLab (another process's lab, e.g.
 * the CLI after `up`). All traffic into the lab goes through a namespace: the test process
 * itself reaches only okl-bot's 10.86.255.2.
 */
export class Lab {
  readonly workDir: string;
  readonly configPath: string;
  readonly addresses: LabAddresses = LAB_ADDRESSES;
  readonly hostAddress: string = HOST_LINK.rootAddress;
  readonly botAddress: string = HOST_LINK.botAddress;
  readonly clientKeyPath: string;
  readonly knownHostsPath: string;
  readonly sshUser: string = SSH_USER;
  readonly repoRoot: string = REPO_ROOT;
  private readonly holders: LabState['holders'];
  private readonly children = new Set<ChildProcess>();

  constructor(state: LabState) {
    this.workDir = state.workDir;
    this.configPath = state.configPath;
    this.holders = state.holders;
    this.clientKeyPath = join(state.workDir, 'keys', 'id_ed25519');
    this.knownHostsPath = join(state.workDir, 'keys', 'known_hosts');
  }

  /** The PID holding a Pi's mount and UTS namespaces. */
  holderOf(node: PiNode): number {
    const pid = this.holders[node];
    if (pid === undefined) throw new Error(`no holder process for ${node}: is the lab up?`);
    return pid;
  }

  /** The node's files as the node sees them (upper layers of its /etc, /var/log, /var/lib). */
  nodePaths(node: PiNode) {
    return nodePaths(this.workDir, node);
  }

  /** argv that runs `argv` inside a node's namespaces (net, and for a Pi its mount and UTS). */
  commandFor(node: LabNode, argv: readonly string[]): string[] {
    if (node === 'pi-a' || node === 'pi-b') {
      return ['nsenter', '--target', String(this.holderOf(node)), '--mount', '--uts', '--net', '--', ...argv];
    }
    return ['ip', 'netns', 'exec', namespaceOf(node), ...argv];
  }

  /** Runs a command as root inside a node. A string runs with sh -c; an array runs as argv. */
  exec(
    node: LabNode,
    command: string | readonly string[],
    options: { timeoutMs?: number; input?: string } = {},
  ): Promise<RunResult> {
    const argv = typeof command === 'string' ? ['sh', '-c', command] : command;
    const [file, ...args] = this.commandFor(node, argv);
    return run(file ?? 'false', args, {
      env: { PATH: NODE_ENV_PATH, LANG: 'C.UTF-8', HOME: '/root', TZ: 'UTC' },
      timeoutMs: options.timeoutMs ?? 30_000,
      ...(options.input === undefined ? {} : { input: options.input }),
    });
  }

  /** Like exec, but a non-zero exit throws. */
  async execOk(node: LabNode, command: string | readonly string[]): Promise<string> {
    const result = await this.exec(node, command);
    if (result.code !== 0) {
      throw new Error(
        `${node}: ${typeof command === 'string' ? command : command.join(' ')} → exit ${result.code}: ${result.stderr.trim()}`,
      );
    }
    return result.stdout;
  }

  /** OpenSSH client argv (to run inside okl-bot) for the lab user on a Pi, host key pinned. */
  sshArgv(node: PiNode, command: string, options: SshOptions = {}): string[] {
    const argv = [
      'ssh',
      '-F',
      'none',
      '-i',
      this.clientKeyPath,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      `UserKnownHostsFile=${options.knownHostsFile ?? this.knownHostsPath}`,
      '-o',
      'GlobalKnownHostsFile=/dev/null',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      'ConnectTimeout=3',
      '-o',
      'LogLevel=ERROR',
    ];
    if (options.controlMaster === true) {
      argv.push(
        '-o',
        'ControlMaster=auto',
        '-o',
        `ControlPath=${join(this.workDir, 'ssh-%C')}`,
        '-o',
        'ControlPersist=300',
      );
    }
    argv.push(`${SSH_USER}@${LAB_ADDRESSES[node]}`, '--', command);
    return argv;
  }

  /** Runs `command` on a Pi over SSH from okl-bot, as the lab user, with the pinned host key. */
  ssh(node: PiNode, command: string, options: SshOptions = {}): Promise<RunResult> {
    return this.exec('bot', this.sshArgv(node, command, options), { timeoutMs: options.timeoutMs ?? 15_000 });
  }

  /**
   * Starts a child process inside okl-bot with the repo as cwd (the bot under test, a hook
   * listener…). It is killed by down() if still running.
   */
  spawnInBot(command: string, args: readonly string[] = [], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', namespaceOf('bot'), command, ...args], {
      cwd: this.repoRoot,
      ...options,
    });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Which Pis hold the VIP right now (both = split brain). */
  async vipHolders(): Promise<PiNode[]> {
    const holders: PiNode[] = [];
    for (const node of PI_NODES) {
      const result = await run('ip', ['-n', namespaceOf(node), '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
      if (result.stdout.includes(` ${LAB_ADDRESSES.vip}/`)) holders.push(node);
    }
    return holders;
  }

  /** Waits until exactly `expected` holds the VIP (or nobody, with an empty list). */
  // A bound against a hung lab, not a measurement: VIP moves take ~1–4 s idle, longer on a loaded machine.
  async waitForVip(expected: readonly PiNode[], timeoutMs = 20_000): Promise<number> {
    const started = Date.now();
    const want = [...expected].sort().join(',');
    await waitFor(
      `VIP held by [${want}]`,
      async () => ((await this.vipHolders()).sort().join(',') === want ? true : undefined),
      timeoutMs,
      50,
    );
    return Date.now() - started;
  }

  /** A unit's state on a node, from the lab systemctl. */
  async unitState(node: PiNode, unit: string): Promise<string> {
    return (await this.exec(node, ['systemctl', 'is-active', unit])).stdout.trim();
  }

  /** A daemon's main PID on a node, from its pid file inside the node's /run. */
  async mainPid(node: PiNode, pidFile: string): Promise<number | undefined> {
    try {
      const text = await readFile(`/proc/${this.holderOf(node)}/root${pidFile}`, 'utf8');
      const pid = Number(text.trim().split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 && (await isAlive(pid)) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** curl run inside okl-bot (a real client on the lab network). */
  curl(args: readonly string[], timeoutMs = 15_000): Promise<RunResult> {
    return this.exec('bot', ['curl', '-sS', '--max-time', '10', ...args], { timeoutMs });
  }

  /** redis-cli from okl-bot against pi-b's Redis over the lab network. */
  redis(args: readonly string[], input?: string): Promise<RunResult> {
    return this.exec('bot', ['redis-cli', '-h', LAB_ADDRESSES['pi-b'], '-p', String(PORTS.redis), ...args], {
      ...(input === undefined ? {} : { input }),
    });
  }

  get orchestratorSocket(): string {
    return join(this.workDir, 'orch', 'control.sock');
  }

  /** Switches the orchestrator's mode at run time (healthy | down | 503 | slow). */
  setOrchestratorMode(mode: OrchestratorMode, delayMs?: number): Promise<OrchestratorState> {
    return orchestratorRequest(this.orchestratorSocket, 'PUT', '/mode', JSON.stringify({ mode, delayMs }));
  }

  orchestratorState(): Promise<OrchestratorState> {
    return orchestratorRequest(this.orchestratorSocket, 'GET', '/state');
  }

  /** Applies a fault; the handle reverts it. */
  fault<N extends FaultName>(name: N, params?: FaultParams[N]): Promise<FaultHandle> {
    return applyFault(this, name, params);
  }

  /** Tears the lab down: the children this process started, then everything downLab removes. */
  async down(): Promise<void> {
    for (const child of this.children) child.kill('SIGKILL');
    this.children.clear();
    await downLab();
  }
}

async function ensureLabUser(): Promise<void> {
  if ((await run('id', ['-u', SSH_USER])).code === 0) return;
  // `*` in the password field: no password login, yet not "locked" (sshd refuses `!` even with a key).
  // /bin/sh (dash) reads no rc file for a command, so each exec stays cheap.
  await runOk('useradd', [
    '--system',
    '--no-create-home',
    '--home-dir',
    `/home/${SSH_USER}`,
    '--shell',
    '/bin/sh',
    '--password',
    '*',
    SSH_USER,
  ]);
}

function startHolder(node: PiNode): Promise<number> {
  // One long-lived process per Pi holds its mount and UTS namespaces; every daemon of the node
  // is started inside them with nsenter. `unshare` execs `sleep` in place, so the PID is the holder.
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      namespaceOf(node),
      'unshare',
      '--mount',
      '--uts',
      '--propagation',
      'private',
      'sleep',
      'infinity',
    ],
    { detached: true, stdio: 'ignore' },
  );
  child.unref();
  const pid = child.pid;
  if (pid === undefined) return Promise.reject(new Error(`could not start the holder of ${node}`));
  // nsenter must not run before unshare did, or it would enter the wrong mount namespace.
  return waitFor(
    `${node}'s namespace holder`,
    async () =>
      (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim() === 'sleep' ? pid : undefined,
    5000,
    5,
  );
}

async function startOrchestrator(workDir: string): Promise<number> {
  const dir = join(workDir, 'orch');
  await mkdir(dir, { recursive: true });
  const log = await open(join(dir, 'orchestrator.log'), 'a');
  const socket = join(dir, 'control.sock');
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      namespaceOf('orch'),
      process.execPath,
      join(ASSETS_DIR, 'orchestrator.mjs'),
      LAB_ADDRESSES.orch,
      String(PORTS.orchestrator),
      socket,
    ],
    { detached: true, stdio: ['ignore', log.fd, log.fd] },
  );
  child.unref();
  await log.close();
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start the orchestrator');
  await waitFor(
    'the orchestrator',
    async () =>
      orchestratorRequest(socket, 'GET', '/state').then(
        () => true,
        () => undefined,
      ),
    5000,
    20,
  );
  return pid;
}

async function initNode(workDir: string, node: PiNode, holder: number): Promise<void> {
  const result = await run(
    'nsenter',
    [
      '--target',
      String(holder),
      '--mount',
      '--uts',
      '--net',
      '--',
      'sh',
      join(ASSETS_DIR, 'node-init.sh'),
      node,
      nodePaths(workDir, node).root,
    ],
    { env: { PATH: NODE_ENV_PATH, LANG: 'C.UTF-8', TZ: 'UTC' }, timeoutMs: 20_000 },
  );
  if (result.code !== 0)
    throw new Error(`setting up ${node} failed (exit ${result.code}): ${result.stderr.trim()}`);
}

/**
 * Builds the lab from scratch (tearing down any stale one first) and resolves once the VIP
 * answers from pi-a. Throws with the reason when the machine cannot run it.
 */
export async function startLab(options: LabOptions = {}): Promise<Lab> {
  const log = options.log ?? (() => undefined);
  const availability = labAvailability();
  if (!availability.ok) throw new Error(`the lab cannot run here: ${availability.reason}`);
  const notifyUrl = notifyUrlOk(options.notifyUrl ?? DEFAULT_NOTIFY_URL);
  const stale = await downLab();
  if (stale.namespaces.length > 0 || stale.workDirs.length > 0) {
    log(`removed a stale lab (${stale.namespaces.length} namespaces, ${stale.killed} processes)`);
  }
  await ensureLabUser();

  const workDir = await mkdtemp(WORK_DIR_PREFIX);
  await chmod(workDir, 0o755);
  await writeFile(
    join(workDir, WORK_DIR_MARKER),
    'okome-bot lab work dir; removed by `npm run lab -- down`\n',
  );
  const state: LabState = {
    version: 1,
    workDir,
    configPath: join(workDir, 'okome.lab.yml'),
    holders: {},
    startedAt: new Date().toISOString(),
    ready: false,
  };
  // Written before anything starts, so that a crash from here on leaves something down() can find.
  await writeLabState(state);

  try {
    await mkdir(join(workDir, 'keys'), { mode: 0o700 });
    const [, clientKey] = await Promise.all([
      createNetwork(),
      generateKeyPair(join(workDir, 'keys', 'id_ed25519'), 'okome-bot-lab'),
    ]);
    await assertNoDefaultRoute();
    log('network up');

    const nodeFile = (node: PiNode) =>
      writeNodeFiles({
        workDir,
        node,
        clientKey,
        notifyUrl,
        advertInt: options.advertInt ?? 1,
        prewarmIntervalSec: options.prewarmIntervalSec ?? 20,
      });
    const [hostKeyA, hostKeyB, holderA, holderB, orchestratorPid] = await Promise.all([
      nodeFile('pi-a'),
      nodeFile('pi-b'),
      startHolder('pi-a'),
      startHolder('pi-b'),
      startOrchestrator(workDir),
    ]);
    state.holders = { 'pi-a': holderA, 'pi-b': holderB };
    state.orchestratorPid = orchestratorPid;
    await writeLabState(state);
    await Promise.all([initNode(workDir, 'pi-a', holderA), initNode(workDir, 'pi-b', holderB)]);
    log('nodes up');

    await writeFile(
      join(workDir, 'keys', 'known_hosts'),
      `${knownHostsLine(LAB_ADDRESSES['pi-a'], hostKeyA.publicLine)}\n${knownHostsLine(LAB_ADDRESSES['pi-b'], hostKeyB.publicLine)}\n`,
    );
    await writeBotConfig(
      state.configPath,
      buildBotConfig({
        privateKeyPath: clientKey.privatePath,
        hostKeys: { 'pi-a': hostKeyA.fingerprint, 'pi-b': hostKeyB.fingerprint },
        storePath: join(workDir, 'okome.db'),
      }),
    );

    const lab = new Lab(state);
    await lab.waitForVip(['pi-a'], 15_000);
    // The VIP is assigned a moment before the first request through it can succeed.
    await waitFor(
      'the VIP to answer',
      async () =>
        (await lab.curl(['-fso', '/dev/null', '--max-time', '1', `http://${LAB_ADDRESSES.vip}/healthz`]))
          .code === 0
          ? true
          : undefined,
      5000,
      50,
    );
    await assertNoDefaultRoute();
    state.ready = true;
    await writeLabState(state);
    log('VIP on pi-a');
    return lab;
  } catch (error) {
    await downLab().catch(() => undefined);
    throw error;
  }
}

/** The lab another process started (`npm run lab -- up`), or an error saying how to start one. */
export async function attachLab(): Promise<Lab> {
  const state = await readLabState();
  if (state === undefined) throw new Error('no lab is up. To resolve, run `npm run lab -- up`.');
  return new Lab(state);
}

/** The client key pair the lab's SSH uses (for tests that pin keys by hand). */
export function labClientKey(lab: Lab) {
  return readKeyPair(lab.clientKeyPath);
}

export { sleep };
