/**
 * What a status costs each Pi: CPU time (cgroup v1 `cpuacct`) and processes started (the
 * `sched_process_fork`/`sched_process_exec` tracepoints counted by `perf stat` per cgroup).
 * Each Pi's sshd goes into a cgroup of its own, so everything the bot makes it run (session
 * processes, the batch script, the commands, sudo) is counted and nothing else on the node is
 * (keepalived's track script, timers). Process accounting is global here and cannot attribute
 * work to a node; the cgroups can.
 *
 * `attachPiCgroups` runs in the root namespace (bench/run.ts); `PiCostMeter` in the bench
 * process inside the lab, which sees the hierarchies through the mounts made before it started.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PiCgroups {
  /** For the bench process: where the hierarchies are and each node's cgroup name. */
  readonly env: Record<string, string>;
  release(): void;
}

const CONTROLLERS = ['cpuacct', 'perf_event'] as const;

/** Moves each node's sshd (found among the processes of its network namespace) into its cgroups. */
export function attachPiCgroups(nodes: ReadonlyMap<string, string>): PiCgroups {
  const root = mkdtempSync(join(tmpdir(), 'okome-bench-cgroups-'));
  const mounted: string[] = [];
  const groups: string[] = [];
  const names: Record<string, string> = {};
  try {
    for (const controller of CONTROLLERS) {
      const dir = join(root, controller);
      mkdirSync(dir);
      execFileSync('mount', ['-t', 'cgroup', '-o', controller, 'cgroup', dir]);
      mounted.push(dir);
    }
    for (const [node, namespace] of nodes) {
      const name = `okome-bench-${node}`;
      names[node] = name;
      const pids = execFileSync('ip', ['netns', 'pids', namespace], { encoding: 'utf8' })
        .split('\n')
        .filter((p) => p !== '' && readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'sshd');
      if (pids.length === 0) throw new Error(`no sshd in ${namespace}`);
      for (const dir of mounted) {
        const group = join(dir, name);
        mkdirSync(group, { recursive: true });
        groups.push(group);
        for (const pid of pids) writeFileSync(join(group, 'cgroup.procs'), pid);
      }
    }
  } catch (error) {
    release();
    throw error;
  }
  function release(): void {
    // Processes back to the root cgroup, then the groups and mounts go.
    for (const group of groups) {
      const parent = join(group, '..');
      for (const pid of readFileSync(join(group, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
        try {
          writeFileSync(join(parent, 'cgroup.procs'), pid);
        } catch {
          // Gone meanwhile.
        }
      }
      try {
        rmdirSync(group);
      } catch {
        // A process still in it; the lab's teardown kills it, the empty group stays harmless.
      }
    }
    for (const dir of mounted) execFileSync('umount', [dir]);
    if (readdirSync(root).every((d) => CONTROLLERS.includes(d as (typeof CONTROLLERS)[number])))
      rmSync(root, { recursive: true, force: true });
  }
  return {
    env: { BENCH_PI_CGROUPS: JSON.stringify({ cpuacct: join(root, 'cpuacct'), names }) },
    release,
  };
}

export interface PiProcessCounts {
  readonly forks: number;
  readonly execs: number;
}

/** Reads the cgroups `attachPiCgroups` made; absent when the bench runs without them. */
export class PiCostMeter {
  private constructor(
    private readonly cpuacct: string,
    readonly names: Readonly<Record<string, string>>,
  ) {}

  static fromEnv(env: NodeJS.ProcessEnv = process.env): PiCostMeter | undefined {
    const raw = env.BENCH_PI_CGROUPS;
    if (raw === undefined) return undefined;
    const { cpuacct, names } = JSON.parse(raw) as { cpuacct: string; names: Record<string, string> };
    return new PiCostMeter(cpuacct, names);
  }

  /** CPU time used so far by each node's cgroup, in ms. */
  cpuMs(): Record<string, number> {
    return Object.fromEntries(
      Object.entries(this.names).map(([node, name]) => [
        node,
        Number(readFileSync(join(this.cpuacct, name, 'cpuacct.usage'), 'utf8')) / 1e6,
      ]),
    );
  }

  /** Counts processes started in each node's cgroup while `fn` runs (perf must be installed). */
  async countProcesses(fn: () => Promise<void>): Promise<Record<string, PiProcessCounts>> {
    const nodes = Object.entries(this.names);
    const perf: ChildProcess = spawn(
      'perf',
      [
        'stat',
        '-x',
        ',',
        '-a',
        '--for-each-cgroup',
        nodes.map(([, name]) => name).join(','),
        '-e',
        'sched:sched_process_fork,sched:sched_process_exec',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let out = '';
    perf.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise<void>((resolve, reject) => {
      perf.once('error', reject);
      perf.once('close', () => resolve());
    });
    // perf prints nothing until it stops; give it time to open its counters.
    await new Promise((resolve) => setTimeout(resolve, 500));
    try {
      await fn();
    } finally {
      perf.kill('SIGINT');
      await exited;
    }
    // CSV lines: count,unit,event,cgroup,…
    const counts: Record<string, { forks: number; execs: number }> = {};
    for (const [node] of nodes) counts[node] = { forks: 0, execs: 0 };
    for (const line of out.split('\n')) {
      const [count, , event, cgroup] = line.split(',');
      const node = nodes.find(([, name]) => cgroup?.endsWith(name))?.[0];
      const c = node === undefined ? undefined : counts[node];
      if (c === undefined || count === undefined) continue;
      if (event === 'sched:sched_process_fork') c.forks = Number(count);
      if (event === 'sched:sched_process_exec') c.execs = Number(count);
    }
    return counts;
  }
}
