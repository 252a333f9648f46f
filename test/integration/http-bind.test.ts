import { afterEach, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import { type LoopbackConfig, loopbackConfig, startInProcessBot } from '../support/bot-harness.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';

let emu: SlackEmulator | undefined;
let cfg: LoopbackConfig | undefined;
let app: RunningApp | undefined;

afterEach(async () => {
  await app?.stop({ graceMs: 1000 });
  await emu?.close();
  cfg?.cleanup();
  app = emu = cfg = undefined;
});

it('Socket Mode with no http.host listens on loopback only', async () => {
  emu = await startSlackEmulator();
  cfg = await loopbackConfig((doc) => {
    doc.http = { port: 0 };
  });
  app = await startInProcessBot(cfg.config, emu);
  expect((await fetch(`http://127.0.0.1:${app.httpPort}/healthz`)).status).toBe(200);
  // Another local address reaches a server bound to every address, not one bound to 127.0.0.1.
  await expect(fetch(`http://127.0.0.5:${app.httpPort}/healthz`)).rejects.toThrow();
});
