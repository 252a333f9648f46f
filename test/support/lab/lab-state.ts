import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { RUN_DIR, STATE_FILE } from './topology.js';

/**
 * What a running lab needs to be found again by another process (the CLI's `status`, `exec`,
 * `fault` after `up`) and torn down after a crash. Kept in /run/okome-lab, removed by `down`.
 */
const labStateSchema = z.strictObject({
  version: z.literal(1),
  workDir: z.string().startsWith('/tmp/'),
  configPath: z.string(),
  holders: z.strictObject({ 'pi-a': z.int().positive(), 'pi-b': z.int().positive() }).partial(),
  orchestratorPid: z.int().positive().optional(),
  startedAt: z.string(),
  ready: z.boolean(),
});
export type LabState = z.infer<typeof labStateSchema>;

export async function writeLabState(state: LabState): Promise<void> {
  await mkdir(RUN_DIR, { recursive: true, mode: 0o755 });
  await writeFile(STATE_FILE, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o644 });
}

/** The state of the lab that is up, or undefined when there is none (or it is unreadable). */
export async function readLabState(): Promise<LabState | undefined> {
  let text: string;
  try {
    text = await readFile(STATE_FILE, 'utf8');
  } catch {
    return undefined;
  }
  const parsed = labStateSchema.safeParse(JSON.parse(text));
  return parsed.success ? parsed.data : undefined;
}
