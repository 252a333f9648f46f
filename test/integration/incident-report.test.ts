import { afterEach, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/app.js';
import {
  answeringPiHttp,
  type LoopbackConfig,
  loopbackConfig,
  startInProcessBot,
} from '../support/bot-harness.js';
import { isPng, pngSize } from '../support/png.js';
import {
  type SlackEmulator,
  type StoredMessage,
  startSlackEmulator,
} from '../support/slack-emulator/index.js';

/** The post-incident report from the in-process bot, through the outbox, into the emulated thread. */

let emu: SlackEmulator | undefined;
let app: RunningApp | undefined;
let cfg: LoopbackConfig | undefined;
let piHttp: Awaited<ReturnType<typeof answeringPiHttp>> | undefined;

afterEach(async () => {
  await app?.stop({ graceMs: 2000 });
  await emu?.close();
  await piHttp?.close();
  cfg?.cleanup();
  app = undefined;
  emu = undefined;
  cfg = undefined;
  piHttp = undefined;
});

async function boot(
  override: (doc: Record<string, unknown>) => void = () => {},
): Promise<{ emu: SlackEmulator; app: RunningApp }> {
  emu = await startSlackEmulator();
  // pi-b answers HTTP: the bot is not isolated, and the refused orchestrator makes incident 5.
  piHttp = await answeringPiHttp();
  const piOverride = piHttp.override;
  cfg = await loopbackConfig((doc) => {
    piOverride(doc);
    override(doc);
  });
  app = await startInProcessBot(cfg.config, emu);
  return { emu, app };
}

/** A status that opens incident 5; its root once posted. */
async function incidentFive(emu: SlackEmulator): Promise<StoredMessage> {
  await emu.slash({ userId: 'U1', channelId: 'C0OPS', text: 'status' }).ack;
  return emu.waitFor(
    () =>
      emu
        .messagesIn('C0INCIDENT')
        .find((m) => m.text.startsWith('Incident 5') && JSON.stringify(m.blocks).includes('okome:ack:')),
    10_000,
    'the root of incident 5 with its Ack button',
  );
}

async function acknowledge(emu: SlackEmulator, root: StoredMessage, user: string): Promise<void> {
  const actionId = /"action_id":"(okome:ack:\d+)"/.exec(JSON.stringify(root.blocks))?.[1] ?? '';
  await emu.click({ userId: user, channelId: 'C0INCIDENT', messageTs: root.ts, actionId }).ack;
  await emu.waitFor(
    () => emu.threadOf('C0INCIDENT', root.ts).some((m) => m.text.includes('acknowledged this incident')),
    10_000,
    'the acknowledgement in the thread',
  );
}

describe('post-incident report', () => {
  it('on resolve: the Markdown report is uploaded into the thread, after the resolve, every step in order', async () => {
    const { emu } = await boot();
    const root = await incidentFive(emu);
    await acknowledge(emu, root, 'U0APPROVER1');
    await emu.slash({ userId: 'U0APPROVER2', channelId: 'C0OPS', text: 'resolve 5' }).ack;
    const [file, ...charts] = await emu.waitFor(
      () => {
        const files = emu.filesInThread('C0INCIDENT', root.ts);
        return files.length >= 3 ? files : undefined;
      },
      20_000,
      'the report and its charts uploaded in the thread',
    );
    // The charts follow the Markdown: PNGs (signature, size) of the VIP holder and the check states.
    expect(charts.map((c) => c.filename.replace(/^.*-(\d{8}T\d{4}Z)-/, ''))).toEqual([
      'vip-holder.png',
      'check-states.png',
    ]);
    for (const chart of charts) {
      const png = chart.content ?? Buffer.alloc(0);
      expect(isPng(png)).toBe(true);
      expect(pngSize(png).width).toBe(900);
      expect(pngSize(png).height).toBeGreaterThan(100);
      expect(png.length).toBeGreaterThan(5000);
      expect(chart.shared?.threadTs).toBe(root.ts);
    }
    expect(file?.filename).toMatch(/^okome-incident-5-\d{8}T\d{4}Z\.md$/);
    expect(file?.title).toMatch(/^Incident 5: /);
    expect(file?.shared?.threadTs).toBe(root.ts);
    expect(file?.shared?.initialComment).toContain('Post-incident report');
    expect(file?.shared?.initialComment).toContain('time to acknowledge');
    const md = file?.content?.toString('utf8') ?? '';
    expect(file?.content?.length).toBe(file?.declaredLength);
    expect(md).toMatch(/^# Post-incident report: Incident 5: /);
    expect(md).toMatch(/\| Acknowledged \| \S+Z by U0APPROVER1 \|/);
    expect(md).toMatch(/\| Time to acknowledge \| \d+ s \|/);
    expect(md).toMatch(/\| Time to resolve \| \d+ s \|/);
    expect(md).toContain('## Checks that diagnosed it');
    // The orchestrator's checks failed at the diagnosis; nothing judged them again before the resolve.
    expect(md).toMatch(/\| orch-health \| (unreachable|fail): .* \| not judged again \|/);
    const steps = [
      '**diagnosis** Opened',
      '**note** Acknowledged by U0APPROVER1',
      '**resolved** Resolved by hand',
    ];
    const at = steps.map((s) => md.indexOf(s));
    expect(at.every((i) => i > 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    // The file is shared after the thread says it resolved (same queue, in order).
    const thread = emu.threadOf('C0INCIDENT', root.ts);
    const resolvedAt = thread.findIndex((m) => m.text.includes('Resolved by hand'));
    const sharedAt = thread.findIndex((m) => m.files?.some((f) => f.id === file?.id) === true);
    expect(resolvedAt).toBeGreaterThan(0);
    expect(sharedAt).toBeGreaterThan(resolvedAt);
    expect(emu.warnings.filter((w) => w.startsWith('upload'))).toEqual([]);

    // /okome report 5 on the resolved incident: the same report again in its thread, the asker told.
    const asked = await emu.slash({ userId: 'U1', channelId: 'C0OPS', text: 'report 5' }).ack;
    expect(asked.payload).toMatchObject({ response_type: 'ephemeral' });
    expect(JSON.stringify(asked.payload)).toContain('posted in its thread');
    await emu.waitFor(() => emu.filesInThread('C0INCIDENT', root.ts).length === 6, 20_000, 'a second report');
    const unknown = await emu.slash({ userId: 'U1', channelId: 'C0OPS', text: 'report 9:nowhere' }).ack;
    expect(JSON.stringify(unknown.payload)).toContain('No incident matches');
  });

  it('uploads off (slack.uploads: false): the report is a message in the thread, no file', async () => {
    const { emu } = await boot((doc) => {
      (doc.slack as Record<string, unknown>).uploads = false;
    });
    const root = await incidentFive(emu);
    await emu.slash({ userId: 'U0APPROVER2', channelId: 'C0OPS', text: 'resolve 5' }).ack;
    const message = await emu.waitFor(
      () => emu.threadOf('C0INCIDENT', root.ts).find((m) => m.text.includes('Post-incident report')),
      15_000,
      'the report as a message',
    );
    expect(JSON.stringify(message.blocks)).toContain('# Post-incident report: Incident 5');
    expect(JSON.stringify(message.blocks)).toContain('| Time to acknowledge | never acknowledged |');
    expect(emu.files).toEqual([]);
    expect(emu.callsTo('files.getUploadURLExternal')).toEqual([]);
  });

  it('Slack refusing uploads (file_uploads_disabled): the report still reaches the thread, as a message', async () => {
    const { emu } = await boot();
    emu.fault({ method: 'files.getUploadURLExternal', kind: 'ok_false', error: 'file_uploads_disabled' });
    const root = await incidentFive(emu);
    await emu.slash({ userId: 'U0APPROVER2', channelId: 'C0OPS', text: 'resolve 5' }).ack;
    const message = await emu.waitFor(
      () => emu.threadOf('C0INCIDENT', root.ts).find((m) => m.text.includes('Post-incident report')),
      15_000,
      'the report as a message',
    );
    expect(JSON.stringify(message.blocks)).toContain('## Timeline (UTC)');
    expect(emu.callsTo('files.getUploadURLExternal').length).toBeGreaterThan(0);
    expect(emu.files).toEqual([]);
  });
});
