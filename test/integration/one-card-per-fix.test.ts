import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newApproval } from '../../src/domain/approval.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { type LoopbackConfig, startCardBot } from '../support/bot-harness.js';
import type { SlackEmulator } from '../support/slack-emulator/index.js';

/**
 * One fix, one card: when another incident already offers the same action on the same node (a
 * failover explained by the old holder's service, and the alert or status naming that service),
 * a diagnosis says once where the card is instead of offering a twin that could run it twice.
 */

let bot: Awaited<ReturnType<typeof startCardBot>>;
let emu: SlackEmulator;
let cfg: LoopbackConfig;

beforeAll(async () => {
  bot = await startCardBot();
  ({ emu, cfg } = bot);
}, 30_000);

afterAll(async () => {
  await bot?.close();
});

describe('one card per fix across incidents', () => {
  it('a live restart-redis on pi-b in another incident: incident 2 says where it is, once, and offers no twin', async () => {
    // Another incident's pending card for the same action and node, as a failover thread holds.
    const side = openSqliteStore({ path: cfg.config.store.path });
    try {
      const { incident } = await side.openOrReuseIncident({
        key: 'failover:pi-a',
        number: '4',
        title: 'VIP failover from pi-a',
        channel: 'C0INCIDENT',
        requester: 'bot',
        now: Date.now(),
      });
      await side.insertApproval(
        newApproval({
          id: 'ap_twinoffered01',
          incidentId: incident.id,
          actionId: 'restart-redis',
          targets: ['pi-b'],
          commands: [{ node: 'pi-b', command: 'sudo systemctl restart redis-server' }],
          requiredApprovals: 1,
          requester: 'bot',
          now: Date.now(),
          ttlMs: 600_000,
        }),
      );
    } finally {
      await side.close();
    }

    for (const round of [1, 2]) {
      await emu.slash({ userId: 'U0REQUEST', channelId: 'C0OPS', text: 'status' }).ack;
      const root = await emu.waitFor(
        () => emu.messagesIn('C0INCIDENT').find((m) => m.text.startsWith('Incident 2')),
        20_000,
        `incident 2 (status ${round})`,
      );
      const pointer = await emu.waitFor(
        () => {
          const found = emu
            .threadOf('C0INCIDENT', root.ts)
            .filter((m) => m.text.includes('is the fix here too, and it is already offered'));
          return found.length > 0 ? found : undefined;
        },
        20_000,
        'the pointer to the card',
      );
      // Said once, whatever the number of diagnoses; no card of its own anywhere.
      expect(pointer).toHaveLength(1);
      expect(pointer[0]?.text).toContain('`restart-redis` on pi-b');
      expect(pointer[0]?.text).toContain('*VIP failover from pi-a*');
      expect(pointer[0]?.text).toContain('ap_twinoffered01');
      const cards = emu
        .callsTo('chat.postMessage')
        .filter((c) => String(c.params.text).startsWith('Restart redis-server on pi-b'));
      expect(cards).toHaveLength(0);
    }
  }, 60_000);
});
