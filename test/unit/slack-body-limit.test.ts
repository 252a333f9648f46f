import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SLACK_EVENTS_MAX_BODY_BYTES } from '../../src/slack/bolt-app.js';
import { formEncode } from '../support/slack-emulator/http-mode.js';
import { buildBlockActionsPayload } from '../support/slack-emulator/payloads.js';

/**
 * HTTP mode's body limit for Slack requests is sized from what Slack really sends us: a click
 * (block_actions) carries the whole message it came from, form-encoded. The limit must hold twice
 * the largest golden card's click, and at least 64 KiB.
 */

const GOLDEN = join(import.meta.dirname, '../fixtures/golden');

interface Message {
  readonly text: string;
  readonly blocks: readonly unknown[];
}

/** Every message in the goldens (a thread golden holds several). */
function goldenMessages(): Array<{ name: string; message: Message }> {
  const out: Array<{ name: string; message: Message }> = [];
  const visit = (name: string, value: unknown) => {
    if (typeof value !== 'object' || value === null) return;
    const v = value as Record<string, unknown>;
    if (typeof v.text === 'string' && Array.isArray(v.blocks)) {
      out.push({ name, message: { text: v.text, blocks: v.blocks } });
      return;
    }
    for (const [key, child] of Object.entries(v)) visit(`${name}.${key}`, child);
  };
  for (const file of readdirSync(GOLDEN).filter((f) => f.endsWith('.json'))) {
    visit(file, JSON.parse(readFileSync(join(GOLDEN, file), 'utf8')));
  }
  return out;
}

/** The bytes of the HTTP body Slack posts for a click on `message`. */
function clickBodyBytes(message: Message): number {
  const payload = buildBlockActionsPayload(
    {
      userId: 'U0APPROVER1',
      channelId: 'C0INCIDENT',
      messageTs: '1714533127.000100',
      actionId: 'okome:approve:x',
    },
    undefined,
    {
      teamId: 'T0TEAM',
      teamDomain: 'okome',
      appId: 'A0APP',
      botId: 'B0BOT',
      botUserId: 'U0BOT',
      verificationToken: 'v',
    },
    {
      userName: 'approver',
      channelName: 'incidents',
      responseUrl: 'https://hooks.slack.com/actions/T0TEAM/1234567890/abcdefghijklmnopqrstuvwx',
      triggerId: '1234567890.1234567890.abcdef0123456789abcdef0123456789',
    },
    Date.UTC(2024, 4, 1),
  );
  const withCard = { ...payload, message: { ...(payload.message as object), ...message } };
  return Buffer.byteLength(formEncode({ payload: JSON.stringify(withCard) }));
}

describe('SLACK_EVENTS_MAX_BODY_BYTES', () => {
  it('holds twice the largest golden card click, and at least 64 KiB', () => {
    const sizes = goldenMessages().map(({ name, message }) => ({ name, bytes: clickBodyBytes(message) }));
    expect(sizes.length).toBeGreaterThan(5);
    const largest = Math.max(...sizes.map((s) => s.bytes));
    expect(SLACK_EVENTS_MAX_BODY_BYTES).toBeGreaterThanOrEqual(2 * largest);
    expect(SLACK_EVENTS_MAX_BODY_BYTES).toBeGreaterThanOrEqual(64 * 1024);
    // Not far above what is needed either: Bolt's own default (4 MB) is what the attack used.
    expect(SLACK_EVENTS_MAX_BODY_BYTES).toBeLessThanOrEqual(Math.max(64 * 1024, 4 * largest));
  });
});
