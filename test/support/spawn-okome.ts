import { spawn } from 'node:child_process';

export interface OkomeRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Milliseconds from the last byte the process wrote to its exit. */
  readonly lingerMs: number;
}

/**
 * How long a CLI run may stay up after its last output. What this catches is a handle left open
 * (a reconnect timer, undici's 4 s keep-alive, a retry back-off), not speed: a loaded 2-core CI
 * machine was seen taking 250 ms to exit after its last byte with nothing left open.
 */
export const PROMPT_EXIT_MS = 1000;

/** Runs the okome CLI from source as an operator would, without the caller's OKOME_* variables. */
export function spawnOkome(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<OkomeRun> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('OKOME_') && !k.startsWith('SLACK_')),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/okome.ts', ...args], {
    env: { ...clean, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let lastOutput = performance.now();
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    lastOutput = performance.now();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    lastOutput = performance.now();
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      const lingerMs = performance.now() - lastOutput;
      // The streams may still hold the last chunks: wait for them before answering.
      child.on('close', () => resolve({ code, stdout, stderr, lingerMs }));
    });
  });
}
