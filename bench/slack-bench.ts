/**
 * Slack ack latency and idle RSS: the built bot in its own process, Socket Mode against the
 * emulator on loopback, diagnoses against closed loopback ports (fast, honest "refused").
 */
import { loopbackConfig } from '../test/support/bot-harness.js';
import { startSlackEmulator } from '../test/support/slack-emulator/index.js';
import { percentile, startBotProcess } from './bot-process.js';

export async function slackBench(): Promise<Record<string, unknown>> {
  const emu = await startSlackEmulator();
  const cfg = await loopbackConfig((doc) => {
    (doc.alerts as unknown) = { vipWatch: { enabled: false } };
  });
  const bot = startBotProcess(cfg.path, {
    SLACK_BOT_TOKEN: 'xoxb-bench',
    SLACK_APP_TOKEN: 'xapp-bench',
    SLACK_API_URL: emu.apiUrl,
  });
  try {
    const t0 = performance.now();
    await emu.waitForSocket(30_000);
    const readyMs = Math.round(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 2000));
    const idleRssMb = bot.rssMb();

    const help: number[] = [];
    for (let i = 0; i < 1000; i += 1) {
      help.push((await emu.slash({ userId: 'U0BENCH', channelId: 'C0OPS', text: 'help' }).ack).latencyMs);
    }
    const status: number[] = [];
    for (let i = 0; i < 100; i += 1) {
      status.push((await emu.slash({ userId: 'U0BENCH', channelId: 'C0OPS', text: 'status' }).ack).latencyMs);
    }
    const rssAfterMb = bot.rssMb();
    return {
      readyMs,
      idleRssMb,
      rssAfter1100CommandsMb: rssAfterMb,
      helpAckMs: {
        runs: help.length,
        p50: percentile(help, 50),
        p99: percentile(help, 99),
        max: percentile(help, 100),
      },
      statusAckMs: {
        runs: status.length,
        p50: percentile(status, 50),
        p99: percentile(status, 99),
        max: percentile(status, 100),
      },
    };
  } finally {
    await bot.stop();
    await emu.close();
    cfg.cleanup();
  }
}
