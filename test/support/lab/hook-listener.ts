import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Lab } from './lab.js';
import { waitFor } from './process-runner.js';
import { ASSETS_DIR } from './templates.js';
import { LAB_ADDRESSES, PORTS } from './topology.js';

export interface HookEvent {
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
  readonly at: number;
}

export interface HookListener {
  readonly events: readonly HookEvent[];
  /** Resolves with the first event (old or new) that matches, or throws after timeoutMs. */
  waitFor(match: (event: HookEvent) => boolean, timeoutMs?: number): Promise<HookEvent>;
  stop(): Promise<void>;
}

/**
 * Starts a stand-in for the bot's keepalived hook endpoint inside okl-bot (by default on the
 * address and port the lab's notify scripts POST to) and collects what it receives.
 */
export async function startHookListener(
  lab: Lab,
  host: string = LAB_ADDRESSES.bot,
  port: number = PORTS.botHttp,
): Promise<HookListener> {
  const child: ChildProcess = lab.spawnInBot(
    process.execPath,
    [join(ASSETS_DIR, 'hook-listener.mjs'), host, String(port)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const events: HookEvent[] = [];
  let listening = false;
  const stdout = child.stdout;
  if (stdout === null) throw new Error('hook listener has no stdout');
  createInterface({ input: stdout }).on('line', (line) => {
    if (line === 'listening') listening = true;
    else events.push(JSON.parse(line) as HookEvent);
  });
  await waitFor('the hook listener', async () => (listening ? true : undefined), 5000, 10);
  return {
    events,
    waitFor: (match, timeoutMs = 5000) =>
      waitFor('a matching keepalived hook', async () => events.find(match), timeoutMs, 20),
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
