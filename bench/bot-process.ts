import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The built bot (`node dist/cli/okome.js serve`) as a separate process: its RSS is its own. */
export interface BotProcess {
  readonly child: ChildProcess;
  readonly log: string[];
  rssMb(): number;
  stop(): Promise<void>;
}

const ROOT = join(import.meta.dirname, '..');
/** The V8 flags `npm start` and the Dockerfile use: a small young generation (a Pi has 1 GB). */
export const NODE_FLAGS = ['--max-semi-space-size=2'];

export function startBotProcess(
  configPath: string,
  env: NodeJS.ProcessEnv,
  options: { cwd?: string; nodeFlags?: readonly string[] } = {},
): BotProcess {
  const entry = join(ROOT, 'dist/cli/okome.js');
  if (!existsSync(entry)) throw new Error('bench: run `npm run build` first (dist/cli/okome.js is missing)');
  const flags = [...NODE_FLAGS, ...(options.nodeFlags ?? [])];
  const child = spawn(process.execPath, [...flags, entry, 'serve', '--config', configPath], {
    env: { ...process.env, OKOME_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  });
  const log: string[] = [];
  child.stdout?.on('data', (d: Buffer) => log.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => log.push(d.toString()));
  return {
    child,
    log,
    rssMb() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 'NaN');
      return Math.round((kb / 1024) * 10) / 10;
    },
    async stop() {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 15_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round((s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN) * 100) / 100;
}
