import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type LoopbackConfig, loopbackConfig } from '../support/bot-harness.js';
import { PROMPT_EXIT_MS, spawnOkome } from '../support/spawn-okome.js';

/** `okome serve` with well-formed tokens and Slack out of reach: exit 4, the URL named. */

let cfg: LoopbackConfig | undefined;
afterEach(() => {
  cfg?.cleanup();
  cfg = undefined;
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 1;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('okome serve when Slack cannot be reached at start-up', () => {
  it.each([
    ['Socket Mode', { SLACK_APP_TOKEN: 'xapp-1-A0TEST-1-abcdef' }],
    ['HTTP mode', { SLACK_SIGNING_SECRET: 'abcdef0123456789' }],
  ] as const)('%s: exit 4 (documented), the URL named, not "configuration error"', async (_mode, env) => {
    cfg = await loopbackConfig();
    const url = `http://127.0.0.1:${await closedPort()}/api/`;
    const run = await spawnOkome(['serve', '--config', cfg.path], {
      SLACK_BOT_TOKEN: 'xoxb-1-2-abcdef',
      SLACK_API_URL: url,
      OKOME_LOG_LEVEL: 'silent',
      ...env,
    });
    expect(run.stderr).toContain(`could not reach Slack at ${url}`);
    expect(run.stderr).toContain('OKOME_SLACK_UNAVAILABLE');
    expect(run.code).toBe(4);
    expect(run.lingerMs).toBeLessThan(PROMPT_EXIT_MS);
  });
});
