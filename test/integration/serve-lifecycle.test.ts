import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { type LoopbackConfig, loopbackConfig } from '../support/bot-harness.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';

/** `okome serve` as operators run it: a separate process, its environment, its signals. */

let emu: SlackEmulator | undefined;
let cfg: LoopbackConfig | undefined;
afterEach(async () => {
  await emu?.close();
  cfg?.cleanup();
  emu = cfg = undefined;
});

function serve(configPath: string, env: NodeJS.ProcessEnv) {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('SLACK_') && !k.startsWith('OKOME_')),
  );
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli/okome.ts', 'serve', '--config', configPath],
    {
      env: { ...clean, OKOME_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, output: () => output };
}

describe('okome serve', () => {
  it.each([
    [{}, 'SLACK_BOT_TOKEN'],
    [{ SLACK_BOT_TOKEN: 'xoxb-ok' }, 'SLACK_APP_TOKEN'],
    [{ SLACK_BOT_TOKEN: 'not-a-token', SLACK_APP_TOKEN: 'xapp-ok' }, 'SLACK_BOT_TOKEN'],
    [{ SLACK_BOT_TOKEN: 'xoxb-ok', SLACK_APP_TOKEN: 'app-token' }, 'SLACK_APP_TOKEN'],
  ])('refuses %j with a message naming %s, exit 2', async (env, variable) => {
    cfg = await loopbackConfig();
    const run = serve(cfg.path, env);
    expect(await run.exited).toBe(2);
    expect(run.output()).toContain(variable);
  });

  it('starts within seconds; on SIGTERM it stops taking work, finishes what is in flight, and exits 0', async () => {
    emu = await startSlackEmulator();
    cfg = await loopbackConfig();
    const run = serve(cfg.path, {
      SLACK_BOT_TOKEN: 'xoxb-test',
      SLACK_APP_TOKEN: 'xapp-test',
      SLACK_API_URL: emu.apiUrl,
    });
    const e = emu;
    // How fast it starts is the bench's figure (built bot); here only that it does, on a loaded machine too.
    await e.waitFor(() => e.socketConnections > 0, 25_000, 'the Socket Mode connection');
    await e.slash({ userId: 'U1', channelId: 'C0OPS', text: 'status' }).ack;
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    // The status in flight was finished (its report delivered) before the process left.
    expect(e.messagesIn('C0OPS').some((m) => m.text.startsWith('OKOME status'))).toBe(true);
  }, 60_000);
});
