import { afterEach, describe, expect, it } from 'vitest';
import type { UploadPayload } from '../../src/outbox/payload.js';
import { Permanent, Retryable } from '../../src/outbox/slack-gateway.js';
import { createOutboxRig, type OutboxRig } from './outbox-fakes.js';

const C1 = 'C0000001';

let rig: OutboxRig | undefined;
function setup(): OutboxRig {
  rig = createOutboxRig();
  rig.deliverer.start();
  return rig;
}

afterEach(async () => {
  await rig?.deliverer.stop();
  await rig?.store.close();
  rig = undefined;
});

const report: UploadPayload = {
  filename: 'okome-incident-2-pi-b.md',
  title: 'Incident 2: Redis down',
  encoding: 'utf8',
  content: '# Post-incident report\n\nRedis is back — ✓\n',
  comment: 'Post-incident report',
  fallback: { text: 'the report as text' },
};

describe('uploads through the outbox', () => {
  it('shares the file in its thread, after the replies queued before it', async () => {
    const { outbox, gateway, drain } = setup();
    const root = await outbox.enqueuePost({ channel: C1, payload: { text: 'incident root' } });
    await outbox.enqueuePost({ channel: C1, threadRef: root, payload: { text: 'Resolved' } });
    await outbox.enqueueUpload({ channel: C1, threadRef: root, upload: report });
    await drain();
    const rootTs = gateway.calls[0]?.method === 'postMessage' ? gateway.calls[0].ts : undefined;
    expect(gateway.attempts.map((a) => a.method)).toEqual(['postMessage', 'postMessage', 'uploadFile']);
    expect(gateway.uploads).toHaveLength(1);
    const [upload] = gateway.uploads;
    expect(upload).toMatchObject({
      channel: C1,
      thread_ts: rootTs,
      filename: report.filename,
      title: report.title,
      initial_comment: 'Post-incident report',
    });
    expect(Buffer.from(upload?.content ?? []).toString('utf8')).toBe(report.content);
  });

  it('a new post in the channel goes before the uploads queued ahead of it (reports never hold up a new incident)', async () => {
    const { outbox, gateway, store, drain } = setup();
    const root = await outbox.enqueuePost({ channel: C1, payload: { text: 'incident root' } });
    await drain();
    await store.atomically(async () => {
      for (const name of ['report.md', 'vip.png', 'checks.png'])
        await outbox.enqueueUpload({ channel: C1, threadRef: root, upload: { ...report, filename: name } });
      await outbox.enqueuePost({ channel: C1, payload: { text: 'a new incident' } });
    });
    await drain();
    expect(gateway.attempts.map((a) => (a.method === 'uploadFile' ? a.method : a.text))).toEqual([
      'incident root',
      'a new incident',
      'uploadFile',
      'uploadFile',
      'uploadFile',
    ]);
    expect(gateway.uploads.map((u) => u.filename)).toEqual(['report.md', 'vip.png', 'checks.png']);
  });

  it('retries an upload Slack could not take, from the start', async () => {
    const { outbox, gateway, drain } = setup();
    let failures = 2;
    gateway.fault = (a) =>
      a.method === 'uploadFile' && failures-- > 0 ? new Retryable('upload 503') : undefined;
    await outbox.enqueueUpload({
      channel: C1,
      upload: { ...report, encoding: 'base64', content: 'iVBORw0KGgo=' },
    });
    await drain();
    expect(gateway.attempts.filter((a) => a.method === 'uploadFile')).toHaveLength(3);
    expect([...(gateway.uploads[0]?.content ?? [])].slice(0, 4)).toEqual([0x89, 0x50, 0x4e, 0x47]);
    expect(await outbox.pendingCount()).toBe(0);
  });

  it('uploads refused in the workspace: the fallback message goes to the thread instead', async () => {
    const { outbox, gateway, store, drain } = setup();
    gateway.fault = (a) => (a.method === 'uploadFile' ? new Permanent('file_uploads_disabled') : undefined);
    const root = await outbox.enqueuePost({ channel: C1, payload: { text: 'incident root' } });
    const ref = await outbox.enqueueUpload({ channel: C1, threadRef: root, upload: report });
    await drain();
    expect(gateway.uploads).toEqual([]);
    const fallback = gateway.calls.at(-1);
    expect(fallback?.method).toBe('postMessage');
    expect(fallback?.args).toMatchObject({ channel: C1, text: 'the report as text' });
    expect(fallback?.method === 'postMessage' ? fallback.args.thread_ts : undefined).toBeDefined();
    expect((await store.message(ref))?.ts).toBe(fallback?.method === 'postMessage' ? fallback.ts : 'none');
    expect(await store.outboxCounts()).toMatchObject({ pending: 0, failed: 0 });
  });

  it('uploads refused and the fallback refused for its blocks: one upload try, then plain text', async () => {
    const { outbox, gateway, store, drain } = setup();
    gateway.fault = (a) =>
      a.method === 'uploadFile'
        ? new Permanent('file_uploads_disabled')
        : a.text === 'the report as text'
          ? new Permanent('invalid_blocks')
          : undefined;
    await outbox.enqueueUpload({
      channel: C1,
      upload: { ...report, fallback: { text: 'the report as text', blocks: [{ type: 'section' }] } },
    });
    await drain();
    expect(gateway.attempts.filter((a) => a.method === 'uploadFile')).toHaveLength(1);
    expect(gateway.texts('postMessage')).toEqual([expect.stringContaining('simplified')]);
    expect(await store.outboxCounts()).toMatchObject({ pending: 0, failed: 0 });
  });

  it('another refusal fails the row (kept for the record), the queue moves on', async () => {
    const { outbox, gateway, store, drain } = setup();
    gateway.fault = (a) => (a.method === 'uploadFile' ? new Permanent('invalid_channel') : undefined);
    await outbox.enqueueUpload({ channel: C1, upload: report });
    await drain();
    expect(await store.outboxCounts()).toMatchObject({ pending: 0, failed: 1 });
  });
});
