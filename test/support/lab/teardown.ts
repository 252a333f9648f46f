import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readLabState } from './lab-state.js';
import { deleteNetwork, listLabNamespaces } from './network.js';
import { run, sleep } from './process-runner.js';
import { RUN_DIR, WORK_DIR_MARKER, WORK_DIR_PREFIX } from './topology.js';

/** True when the process exists and is neither a zombie nor dead (kill -0 says yes to zombies). */
export async function isAlive(pid: number): Promise<boolean> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    const state = text.slice(text.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Every process whose network namespace is a lab namespace: the lab's processes, by definition. */
export async function labProcesses(): Promise<number[]> {
  const pids: number[] = [];
  for (const ns of await listLabNamespaces()) {
    const result = await run('ip', ['netns', 'pids', ns]);
    for (const line of result.stdout.split('\n')) {
      const pid = Number(line.trim());
      if (Number.isInteger(pid) && pid > 1 && pid !== process.pid) pids.push(pid);
    }
  }
  return pids;
}

async function strayWorkDirs(): Promise<string[]> {
  const prefix = WORK_DIR_PREFIX.slice(WORK_DIR_PREFIX.lastIndexOf('/') + 1);
  const parent = WORK_DIR_PREFIX.slice(0, WORK_DIR_PREFIX.lastIndexOf('/'));
  const found: string[] = [];
  for (const name of await readdir(parent).catch(() => [] as string[])) {
    if (!name.startsWith(prefix)) continue;
    const dir = join(parent, name);
    // Only directories the lab made carry the marker: never remove anything else from /tmp.
    if (
      await stat(join(dir, WORK_DIR_MARKER)).then(
        () => true,
        () => false,
      )
    )
      found.push(dir);
  }
  return found;
}

export interface TeardownReport {
  readonly killed: number;
  readonly namespaces: readonly string[];
  readonly workDirs: readonly string[];
}

/**
 * Removes every trace of a lab, whole, half-built or crashed: kills every process in an okl-*
 * namespace (by PID; that also empties the nodes' mount namespaces and their mounts), deletes
 * the namespaces, okl-host and the safety route, the work dir(s) and /run/okome-lab.
 * Idempotent: with no lab it does nothing and reports nothing.
 */
export async function downLab(): Promise<TeardownReport> {
  const state = await readLabState();
  const namespaces = await listLabNamespaces();
  let killed = 0;
  const holders = Object.values(state?.holders ?? {}).filter((pid): pid is number => pid !== undefined);
  const extra = [...holders, ...(state?.orchestratorPid === undefined ? [] : [state.orchestratorPid])];
  for (let round = 0; round < 50; round += 1) {
    const pids = [...new Set([...(await labProcesses()), ...extra])];
    const alive: number[] = [];
    for (const pid of pids) if (await isAlive(pid)) alive.push(pid);
    if (alive.length === 0) break;
    for (const pid of alive) {
      try {
        process.kill(pid, 'SIGKILL');
        if (round === 0) killed += 1;
      } catch {
        // Gone between the listing and the kill.
      }
    }
    await sleep(20);
  }
  await deleteNetwork();
  const workDirs = [
    ...new Set([...(state === undefined ? [] : [state.workDir]), ...(await strayWorkDirs())]),
  ];
  for (const dir of workDirs) await rm(dir, { recursive: true, force: true });
  await rm(RUN_DIR, { recursive: true, force: true });
  return { killed, namespaces, workDirs };
}
