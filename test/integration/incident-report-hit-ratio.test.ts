import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { currentWindow } from '../../src/domain/parse/rate-limit-key.js';
import { systemClock } from '../../src/outbox/clock.js';
import { startCardBot } from '../support/bot-harness.js';
import { type RedisServer, startRedisServer } from '../support/launchers/redis-server.js';
import { isPng, pngSize } from '../support/png.js';
import type { SlackEmulator, StoredMessage } from '../support/slack-emulator/index.js';

/**
 * Incident 6 on a real redis-server, from the miss storm to the status that finds it healed: the
 * hit ratio each diagnosis and the healing status measured is kept in the timeline, and the
 * post-incident report's third chart draws it.
 */

let bot: Awaited<ReturnType<typeof startCardBot>> | undefined;
let redis: RedisServer | undefined;
let client: Redis | undefined;

afterEach(async () => {
  client?.disconnect();
  await bot?.close();
  await redis?.stop();
  client = undefined;
  bot = undefined;
  redis = undefined;
});

/** `/okome status` and its report in the asking channel; returns once the report is there. */
async function status(emu: SlackEmulator): Promise<void> {
  const before = emu.messagesIn('C0OPS').filter((m) => m.text.includes('OKOME status')).length;
  await emu.slash({ userId: 'U1', channelId: 'C0OPS', text: 'status' }).ack;
  await emu.waitFor(
    () => emu.messagesIn('C0OPS').filter((m) => m.text.includes('OKOME status')).length > before,
    15_000,
    'the status report',
  );
}

describe('post-incident report: the Redis hit ratio chart', () => {
  it('incident 6 resolved by a healthy status: a third PNG, the hit ratio over the incident', async () => {
    redis = await startRedisServer();
    const server = redis;
    const clock = { skewMs: 0, now: () => Date.now() + clock.skewMs, schedule: systemClock.schedule };
    bot = await startCardBot(
      (doc) => {
        doc.redis = { host: server.host, port: server.port, rateLimit: { limit: 60, windowSec: 60 } };
        // Recovery judged over 1 s of samples rather than the default 5 minutes.
        doc.thresholds = { recoverySec: 1 };
      },
      { clock },
    );
    const { emu } = bot;
    client = new Redis({ host: server.host, port: server.port, maxRetriesPerRequest: 0 });
    // The miss storm: a runaway agent at its budget and lookups that all miss.
    const window = currentWindow(Date.now(), 60);
    await client.set(`okome:budget:rl:agent-7:${window}`, '75');
    await client.set(`okome:budget:rl:agent-7:${window + 1}`, '75');
    for (let i = 0; i < 300; i += 1) await client.get(`okome:planner:missing:${i}`);

    await status(emu);
    const root: StoredMessage = await emu.waitFor(
      () => emu.messagesIn('C0INCIDENT').find((m) => m.text.startsWith('Incident 6')),
      10_000,
      'the root of incident 6',
    );

    // The fix seen from outside: the agent stopped, lookups hit again, over more than the
    // recovery span (the app's clock moved 2 s ahead instead of waiting).
    await client.del(`okome:budget:rl:agent-7:${window}`, `okome:budget:rl:agent-7:${window + 1}`);
    await client.set('okome:planner:warm', 'x');
    for (let i = 0; i < 300; i += 1) await client.get('okome:planner:warm');
    clock.skewMs += 2000;
    await status(emu);
    await emu.waitFor(
      () => emu.threadOf('C0INCIDENT', root.ts).find((m) => m.text.includes('healthy again')),
      10_000,
      'incident 6 resolved by the healthy status',
    );

    const files = await emu.waitFor(
      () => {
        const f = emu.filesInThread('C0INCIDENT', root.ts);
        return f.length >= 4 ? f : undefined;
      },
      20_000,
      'the report and its three charts',
    );
    expect(files.map((f) => f.filename.replace(/^.*-(\d{8}T\d{4}Z)/, ''))).toEqual([
      '.md',
      '-vip-holder.png',
      '-check-states.png',
      '-redis-hit-ratio.png',
    ]);
    const chart = files[3];
    const png = chart?.content ?? Buffer.alloc(0);
    expect(isPng(png)).toBe(true);
    expect(pngSize(png)).toEqual({ width: 900, height: 56 + 200 + 44 + 24 });
    expect(png.length).toBeGreaterThan(5000);
    expect(chart?.title).toMatch(/^Redis hit ratio over incident 6/);
    expect(chart?.shared?.threadTs).toBe(root.ts);

    // The samples behind it: low at the diagnosis, recovered at the healing status.
    const md = files[0]?.content?.toString('utf8') ?? '';
    expect(md).toMatch(/\*\*diagnosis\*\* Opened: Redis hit ratio/);
    expect(md).toContain('**resolved** A status found its checks healthy again.');
  }, 90_000);
});
