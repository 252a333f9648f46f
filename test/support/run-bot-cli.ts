import type { Lab } from './lab/lab.js';

export interface CliRun {
  readonly code: number | null;
  /** The signal that ended it, when one did. */
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time of the whole process, start-up included. */
  readonly ms: number;
}

/** Runs the okome CLI from source inside the lab's bot namespace (the only one with a route to the lab). */
export function runBotCli(
  lab: Lab,
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  script: readonly string[] = ['src/cli/okome.ts'],
): Promise<CliRun> {
  const t0 = performance.now();
  const child = lab.spawnInBot(process.execPath, ['--import', 'tsx', ...script, ...args], {
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0 }),
    );
  });
}
