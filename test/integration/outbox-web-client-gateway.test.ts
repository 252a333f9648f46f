import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LogLevel, WebClient } from '@slack/web-api';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createOutbox } from '../../src/outbox/outbox.js';
import { permalinkTo } from '../../src/outbox/payload.js';
import { Permanent, RateLimited, Retryable } from '../../src/outbox/slack-gateway.js';
import { OUTBOX_WEB_CLIENT_OPTIONS, WebClientGateway } from '../../src/slack/web-client-gateway.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { type SlackEmulator, startSlackEmulator } from '../support/slack-emulator/index.js';

interface Reply {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body: unknown;
}

/** A tiny stand-in for Slack's Web API: records each request, answers from a script. */
let server: Server;
let baseUrl: string;
let script: Reply[] = [];
let requests: { method: string; params: Record<string, string> }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on('end', () => {
      requests.push({
        method: (req.url ?? '').replace('/api/', ''),
        params: Object.fromEntries(new URLSearchParams(body)),
      });
      const reply = script.shift() ?? {
        status: 200,
        body: { ok: true, channel: 'C1', ts: '1700000000.000100' },
      };
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
      res.end(JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(async () => {
  script = [];
  requests = [];
});

function gateway(url = baseUrl): WebClientGateway {
  return new WebClientGateway(
    new WebClient('xoxb-test', {
      slackApiUrl: url,
      timeout: 2000,
      logLevel: LogLevel.ERROR,
      ...OUTBOX_WEB_CLIENT_OPTIONS,
    }),
  );
}

async function thrown(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('WebClientGateway', () => {
  it('posts with thread_ts, reply_broadcast and JSON blocks, and returns the ts', async () => {
    const result = await gateway().postMessage({
      channel: 'C1',
      text: 'evidence',
      blocks: [{ type: 'divider' }],
      thread_ts: '1700000000.000001',
      reply_broadcast: true,
      unfurl_links: false,
    });
    expect(result).toEqual({ ts: '1700000000.000100' });
    expect(requests).toEqual([
      {
        method: 'chat.postMessage',
        params: expect.objectContaining({
          channel: 'C1',
          text: 'evidence',
          blocks: '[{"type":"divider"}]',
          thread_ts: '1700000000.000001',
          reply_broadcast: 'true',
          unfurl_links: 'false',
        }),
      },
    ]);
  });

  it('updates and posts ephemerals', async () => {
    script = [
      { status: 200, body: { ok: true, channel: 'C1', ts: '1.2', text: 'v2' } },
      { status: 200, body: { ok: true, message_ts: '1.3' } },
    ];
    await gateway().update({ channel: 'C1', ts: '1.2', text: 'v2' });
    await gateway().postEphemeral({ channel: 'C1', user: 'U1', text: 'only you' });
    expect(requests.map((r) => [r.method, r.params.ts ?? r.params.user])).toEqual([
      ['chat.update', '1.2'],
      ['chat.postEphemeral', 'U1'],
    ]);
  });

  it('maps 429 to RateLimited(Retry-After) after exactly one request', async () => {
    script = [{ status: 429, headers: { 'retry-after': '7' }, body: { ok: false, error: 'ratelimited' } }];
    const error = await thrown(gateway().postMessage({ channel: 'C1', text: 'x' }));
    expect(error).toBeInstanceOf(RateLimited);
    expect((error as RateLimited).retryAfterSec).toBe(7);
    expect(requests).toHaveLength(1);
  });

  it("maps HTTP 500, 503 (and a proxy's 404) to Retryable, without retrying inside the client", async () => {
    script = [
      { status: 500, body: 'oops' },
      { status: 503, body: 'down' },
      { status: 404, body: 'no such route' },
    ];
    expect(await thrown(gateway().postMessage({ channel: 'C1', text: 'x' }))).toBeInstanceOf(Retryable);
    expect(await thrown(gateway().update({ channel: 'C1', ts: '1.2', text: 'x' }))).toBeInstanceOf(Retryable);
    expect(await thrown(gateway().postEphemeral({ channel: 'C1', user: 'U1', text: 'x' }))).toBeInstanceOf(
      Retryable,
    );
    expect(requests).toHaveLength(3);
  });

  it.each([
    ['channel_not_found', Permanent],
    ['invalid_blocks', Permanent],
    ['msg_too_long', Permanent],
    ['message_not_found', Permanent],
    ['internal_error', Retryable],
    ['fatal_error', Retryable],
    ['service_unavailable', Retryable],
    ['ratelimited', Retryable],
  ])('maps ok:false %s to %o', async (code, kind) => {
    script = [{ status: 200, body: { ok: false, error: code } }];
    const error = await thrown(gateway().postMessage({ channel: 'C1', text: 'x' }));
    expect(error).toBeInstanceOf(kind);
    if (error instanceof Permanent) expect(error.slackCode).toBe(code);
  });

  it('maps a refused connection to Retryable', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await thrown(
      gateway(`http://127.0.0.1:${port}/api/`).postMessage({ channel: 'C1', text: 'x' }),
    );
    expect(error).toBeInstanceOf(Retryable);
  });

  it('fails for good an ok:true post without a ts (retrying would post it twice)', async () => {
    script = [{ status: 200, body: { ok: true, channel: 'C1' } }];
    const error = await thrown(gateway().postMessage({ channel: 'C1', text: 'x' }));
    expect(error).toBeInstanceOf(Permanent);
    expect((error as Permanent).slackCode).toBe('missing_ts');
  });
});

describe('WebClientGateway against the Slack emulator', () => {
  let emu: SlackEmulator;
  beforeAll(async () => {
    emu = await startSlackEmulator();
  });
  afterAll(async () => {
    await emu.close();
  });

  it('chat.getPermalink: a root, a reply in its thread, and message_not_found', async () => {
    const slack = gateway(emu.apiUrl);
    const root = await slack.postMessage({ channel: 'C0INCIDENT', text: 'incident 1' });
    const reply = await slack.postMessage({ channel: 'C0INCIDENT', text: 'evidence', thread_ts: root.ts });
    expect(await slack.getPermalink({ channel: 'C0INCIDENT', message_ts: root.ts })).toEqual({
      permalink: `https://emulated.slack.test/archives/C0INCIDENT/p${root.ts.replace('.', '')}`,
    });
    expect((await slack.getPermalink({ channel: 'C0INCIDENT', message_ts: reply.ts })).permalink).toBe(
      `https://emulated.slack.test/archives/C0INCIDENT/p${reply.ts.replace('.', '')}?thread_ts=${root.ts}&cid=C0INCIDENT`,
    );
    const missing = await thrown(slack.getPermalink({ channel: 'C0INCIDENT', message_ts: '1.000001' }));
    expect(missing).toBeInstanceOf(Permanent);
    expect((missing as Permanent).slackCode).toBe('message_not_found');
  });

  it("an outbox row links to another message's thread once Slack has it", async () => {
    const store = openSqliteStore({ path: ':memory:', now: () => Date.now() });
    const { outbox, deliverer } = createOutbox({ store, gateway: gateway(emu.apiUrl), random: () => 0.5 });
    deliverer.start();
    const asked = emu.callsTo('chat.getPermalink').length;
    try {
      const root = await outbox.enqueuePost({
        channel: 'C0LINKS',
        payload: { text: 'Incident 1 — UI is slow' },
      });
      const link = permalinkTo(root, { label: 'thread' });
      await outbox.enqueuePost({
        channel: 'C0STATUS',
        payload: { text: `Incident 1 · Thread: ${link.placeholder}`, links: [link] },
      });
      expect(await deliverer.flush(10_000)).toBe(true);
      const [posted] = emu.messagesIn('C0LINKS');
      if (posted === undefined) throw new Error('root not posted');
      expect(emu.messagesIn('C0STATUS').map((m) => m.text)).toEqual([
        `Incident 1 · Thread: <https://emulated.slack.test/archives/C0LINKS/p${posted.ts.replace('.', '')}|thread>`,
      ]);
      expect(emu.callsTo('chat.getPermalink')).toHaveLength(asked + 1);
    } finally {
      await deliverer.stop();
      await store.close();
    }
  });

  it("uploads a file into a thread with Slack's three external-upload steps, bytes intact", async () => {
    const slack = gateway(emu.apiUrl);
    const root = await slack.postMessage({ channel: 'C0FILES', text: 'incident 2' });
    const content = Buffer.concat([Buffer.from('# Report\n\n✓ redis back\n'), Buffer.from([0, 255, 0x89])]);
    const before = emu.calls.length;
    await slack.uploadFile({
      channel: 'C0FILES',
      thread_ts: root.ts,
      filename: 'report.md',
      title: 'Incident 2: Redis down',
      content,
      initial_comment: 'Post-incident report',
    });
    expect(emu.calls.slice(before).map((c) => c.method)).toEqual([
      'files.getUploadURLExternal',
      'files.completeUploadExternal',
    ]);
    expect(emu.calls[before]?.params).toMatchObject({
      filename: 'report.md',
      length: String(content.length),
    });
    expect(emu.uploadPosts.at(-1)).toMatchObject({ status: 200, bytes: content.length });
    const [file] = emu.filesInThread('C0FILES', root.ts);
    expect(file).toMatchObject({ filename: 'report.md', title: 'Incident 2: Redis down', uploadedAs: 'raw' });
    expect(file?.content?.equals(content)).toBe(true);
    expect(file?.shared?.initialComment).toBe('Post-incident report');
    // The share is a reply in the thread carrying the file, as Slack shows it.
    const reply = emu.threadOf('C0FILES', root.ts).at(-1);
    expect(reply).toMatchObject({ text: 'Post-incident report', threadTs: root.ts });
    expect(reply?.files?.map((f) => f.name)).toEqual(['report.md']);
    expect(emu.warnings.filter((w) => w.startsWith('upload'))).toEqual([]);
  });

  it('an upload whose POST fails is Retryable; a refused upload method is Permanent with its code', async () => {
    const slack = gateway(emu.apiUrl);
    const args = { channel: 'C0FILES', filename: 'r.md', title: 'r', content: Buffer.from('x') };
    emu.fault({ method: 'upload', kind: 'http_500', times: 1 });
    expect(await thrown(slack.uploadFile(args))).toBeInstanceOf(Retryable);
    emu.fault({
      method: 'files.getUploadURLExternal',
      kind: 'ok_false',
      error: 'file_uploads_disabled',
      times: 1,
    });
    const refused = await thrown(slack.uploadFile(args));
    expect(refused).toBeInstanceOf(Permanent);
    expect((refused as Permanent).slackCode).toBe('file_uploads_disabled');
    // An empty file is refused by Slack itself (length 0).
    const empty = await thrown(slack.uploadFile({ ...args, content: Buffer.alloc(0) }));
    expect((empty as Permanent).slackCode).toBe('missing_argument');
  });
});
