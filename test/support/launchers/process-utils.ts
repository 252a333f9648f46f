import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';

/**
 * Process handling shared by the launchers: spawn a daemon with its output in a log file,
 * wait until it is ready, and stop it together with everything it forked, by PID only
 * (never by name: other tests and the lab run the same daemons).
 */

const execFileAsync = promisify(execFile);

/** Runs a program with an argv array (no shell) and returns its stdout. */
export async function run(command: string, args: readonly string[], timeoutMs = 10_000): Promise<string> {
  const { stdout } = await execFileAsync(command, args, { timeout: timeoutMs, encoding: 'utf8' });
  return stdout;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The one-letter state from /proc/PID/stat, or undefined when there is no such process. */
export function processState(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses: the state follows the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ', 1)[0];
}

/** Alive = exists and is neither a zombie nor dead; reaped-late zombies count as gone. */
export function isProcessAlive(pid: number): boolean {
  const state = processState(pid);
  return state !== undefined && state !== 'Z' && state !== 'X';
}

function parentPids(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  return children;
}

/**
 * The process and every descendant. Taken before killing: once a parent dies its children
 * are re-parented and the link is lost (sshd's per-connection children also call setsid, so
 * a process-group kill would miss them).
 */
export function processTree(pid: number): number[] {
  const children = parentPids();
  const tree: number[] = [];
  const queue = [pid];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    tree.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return tree;
}

function signalAll(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/** True once every pid is gone (a SIGKILLed process still needs a turn on a CPU to die). */
export async function waitGone(pids: readonly number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (pids.every((pid) => !isProcessAlive(pid))) return true;
    if (Date.now() >= deadline) return false;
    await sleep(10);
  }
}

/** SIGTERM to the whole tree, SIGKILL to what is left after the grace, then wait until all are gone. */
export async function stopProcessTree(pid: number, graceMs = 3000): Promise<void> {
  const tree = processTree(pid).filter(isProcessAlive);
  signalAll(tree, 'SIGTERM');
  if (await waitGone(tree, graceMs)) return;
  const rest = [...new Set(tree.filter(isProcessAlive).flatMap(processTree))];
  signalAll(rest, 'SIGKILL');
  if (!(await waitGone(rest, 5000))) {
    throw new Error(`processes still alive after SIGKILL: ${rest.filter(isProcessAlive).join(', ')}`);
  }
}

/** The end of a log file, for error messages. */
export function logTail(path: string, maxBytes = 4000): string {
  try {
    const text = readFileSync(path, 'utf8');
    return text.length > maxBytes ? `…${text.slice(-maxBytes)}` : text;
  } catch {
    return '(no log)';
  }
}

export interface Daemon {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Set once the process has exited (with its code or signal). */
  exitStatus: string | undefined;
}

/** Starts a foreground daemon with stdout and stderr appended to `logPath`. */
export function spawnDaemon(command: string, args: readonly string[], logPath: string): Daemon {
  const fd = openSync(logPath, 'a');
  try {
    const child = spawn(command, args, { stdio: ['ignore', fd, fd] });
    if (child.pid === undefined) {
      throw new Error(`cannot start ${command}: ${logTail(logPath)}`);
    }
    const daemon: Daemon = { pid: child.pid, child, exitStatus: undefined };
    child.once('exit', (code, signal) => {
      daemon.exitStatus = signal === null ? `exit code ${String(code)}` : `signal ${signal}`;
    });
    // A spawn failure (ENOENT…) arrives as an event; record it rather than crash the test run.
    child.once('error', (error) => {
      daemon.exitStatus = `spawn error: ${error.message}`;
    });
    return daemon;
  } finally {
    closeSync(fd);
  }
}

export class AddressInUseError extends Error {}

/**
 * Polls `isReady` until it resolves true. Fails with the log's tail when the daemon exits
 * first or the deadline passes; an "address in use" exit is an AddressInUseError so the
 * caller can retry on another port (the free-port finder has a race by nature).
 */
export async function waitUntilReady(
  name: string,
  daemon: Daemon,
  logPath: string,
  isReady: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (daemon.exitStatus !== undefined) {
      const log = logTail(logPath);
      const message = `${name} exited before it was ready (${daemon.exitStatus}). Log:\n${log}`;
      throw /address already in use/i.test(log) ? new AddressInUseError(message) : new Error(message);
    }
    if (await isReady().catch(() => false)) return;
    if (Date.now() >= deadline) {
      throw new Error(`${name} not ready within ${timeoutMs} ms. Log:\n${logTail(logPath)}`);
    }
    await sleep(20);
  }
}

/** Retries a start when the port it picked was taken meanwhile. */
export async function retryOnAddressInUse<T>(
  start: (attempt: number) => Promise<T>,
  attempts = 3,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(attempt);
    } catch (error) {
      if (!(error instanceof AddressInUseError) || attempt >= attempts) throw error;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Registry: whatever a test forgets (or a failing test skips) is stopped in afterAll via
// stopAllLaunched(), and at the latest, synchronously, when the worker process exits, crashes,
// or is told to stop (vitest ends its fork workers with SIGTERM, which skips 'exit' handlers).

const registry = new Set<ManagedDaemon>();
let exitHookInstalled = false;

function installExitHooks(): void {
  process.once('exit', killEverythingSync);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killEverythingSync();
      // Our listener replaced the default action: take it again unless someone else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

function killEverythingSync(): void {
  for (const managed of registry) {
    const pid = managed.pid;
    // Only synchronous work is possible in 'exit': SIGKILL whole trees (nginx workers too).
    if (pid !== undefined) signalAll(processTree(pid), 'SIGKILL');
    rmSync(managed.dir, { recursive: true, force: true });
  }
  registry.clear();
}

/** Stops every server still running in this process; for afterAll. */
export async function stopAllLaunched(): Promise<void> {
  const results = await Promise.allSettled([...registry].map((managed) => managed.stop()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

/**
 * One daemon in its own temporary directory: started, restarted and stopped by PID, the
 * directory removed on stop. Registered from creation until stop() has finished.
 */
export class ManagedDaemon {
  private daemon: Daemon | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    readonly name: string,
    readonly dir: string,
    readonly logPath: string,
  ) {
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      installExitHooks();
    }
    registry.add(this);
  }

  get pid(): number | undefined {
    return this.daemon?.pid;
  }

  /** Spawns the daemon and waits until `isReady`; on failure nothing of it is left running. */
  async start(
    command: string,
    args: readonly string[],
    isReady: () => Promise<boolean>,
    timeoutMs: number,
  ): Promise<number> {
    const daemon = spawnDaemon(command, args, this.logPath);
    this.daemon = daemon;
    try {
      await waitUntilReady(this.name, daemon, this.logPath, isReady, timeoutMs);
    } catch (error) {
      await this.kill();
      throw error;
    }
    return daemon.pid;
  }

  /** Stops the process tree but keeps the directory (for a restart). */
  async kill(): Promise<void> {
    const daemon = this.daemon;
    if (daemon === undefined) return;
    await stopProcessTree(daemon.pid);
    this.daemon = undefined;
  }

  /** Idempotent: stops the tree, then removes the directory. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      try {
        await this.kill();
        if (!(await removeDir(this.dir)))
          throw new Error(`${this.name}: ${this.dir} still exists after stop`);
      } finally {
        registry.delete(this);
      }
    })();
    return this.stopping;
  }
}

/** Removes a directory; true when it is really gone. */
export async function removeDir(dir: string): Promise<boolean> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  return !existsSync(dir);
}
