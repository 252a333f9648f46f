import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface OkomeRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /**
   * Milliseconds from the process's last write to stdout or stderr until its event loop was
   * empty, measured inside it (test/support/linger-probe.mjs): what a timer or handle left
   * open adds. The process's teardown after that is not counted.
   */
  readonly lingerMs: number;
}

/**
 * How long a CLI run may stay up after its last output (issue 17: exit within 100 ms of the
 * report, no lingering timers). Measured from outside, the same runs took 100–350 ms on a
 * machine loaded at 4x its cores, most of it teardown and this process's own scheduling,
 * hence the measurement inside the process.
 */
export const PROMPT_EXIT_MS = 100;

const LINGER_PROBE = fileURLToPath(new URL('./linger-probe.mjs', import.meta.url));

/** Runs the okome CLI from source as an operator would, without the caller's OKOME_* variables. */
export function spawnOkome(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<OkomeRun> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('OKOME_') && !k.startsWith('SLACK_')),
  );
  const probeDir = mkdtempSync(join(tmpdir(), 'okome-linger-'));
  const lingerFile = join(probeDir, 'linger');
  const child = spawn(
    process.execPath,
    ['--import', LINGER_PROBE, '--import', 'tsx', 'src/cli/okome.ts', ...args],
    {
      env: { ...clean, NO_COLOR: '1', ...env, OKOME_TEST_LINGER_FILE: lingerFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    // 'close': the process has exited and its streams hold nothing more.
    child.on('close', (code) => {
      let lingerMs = Number.POSITIVE_INFINITY;
      try {
        lingerMs = Number(readFileSync(lingerFile, 'utf8'));
      } catch {
        // Killed, or ended by process.exit before 'exit' listeners ran: no figure, fails the bound.
      } finally {
        rmSync(probeDir, { recursive: true, force: true });
      }
      resolve({ code, stdout, stderr, lingerMs });
    });
  });
}
