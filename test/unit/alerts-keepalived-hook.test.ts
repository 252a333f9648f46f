import { describe, expect, it } from 'vitest';
import {
  type HookSecrets,
  type MarkSeen,
  NODE_HEADER,
  SIGNATURE_HEADER,
  screenKeepalivedHook,
  signHook,
  TIMESTAMP_HEADER,
  verifyKeepalivedHook,
} from '../../src/alerts/keepalived-hook.js';

const SECRET = 'a-long-enough-shared-secret';
const NOW = Date.UTC(2024, 4, 1, 3, 12, 7);
const TS = Math.floor(NOW / 1000);

function seenSet(): MarkSeen & { keys: Set<string> } {
  const keys = new Set<string>();
  const fn = async (key: string) => {
    if (keys.has(key)) return false;
    keys.add(key);
    return true;
  };
  return Object.assign(fn, { keys });
}

function signed(body: string, ts: number | string = TS, secret = SECRET, node = nodeOf(body)) {
  return {
    headers: <Record<string, string | string[]>>{
      [TIMESTAMP_HEADER]: String(ts),
      [NODE_HEADER]: node,
      [SIGNATURE_HEADER]: signHook(secret, ts, node, body),
    },
    rawBody: Buffer.from(body),
  };
}

/** The body's node when it has one, so a signed request names the node it speaks for. */
function nodeOf(body: string): string {
  try {
    const node = (JSON.parse(body) as { node?: unknown }).node;
    return typeof node === 'string' && /^[a-z-]+$/.test(node) ? node : 'pi-b';
  } catch {
    return 'pi-b';
  }
}

const KNOWN = new Set(['pi-a', 'pi-b']);
const SHARED: HookSecrets = { shared: SECRET, perNode: new Map() };

const BODY = JSON.stringify({ node: 'pi-b', instance: 'VI_1', state: 'MASTER', at: '2024-05-01T03:12:06Z' });

function verify(
  request: ReturnType<typeof signed>,
  markSeen: MarkSeen = seenSet(),
  nowMs = NOW,
  secrets: HookSecrets = SHARED,
) {
  return verifyKeepalivedHook({
    ...request,
    secrets,
    knownNodes: KNOWN,
    nowMs,
    replayWindowSec: 300,
    markSeen,
  });
}

describe('verifyKeepalivedHook', () => {
  it('accepts a correctly signed event', async () => {
    const verdict = await verify(signed(BODY));
    expect(verdict).toEqual({
      ok: true,
      duplicate: false,
      event: {
        node: 'pi-b',
        instance: 'VI_1',
        state: 'MASTER',
        at: Date.UTC(2024, 4, 1, 3, 12, 6),
        receivedAt: NOW,
      },
    });
  });

  it('uses the signed timestamp when `at` is absent, keeps priority, tolerates unknown keys', async () => {
    const body = JSON.stringify({
      node: 'pi-a',
      instance: 'VI_1',
      state: 'FAULT',
      priority: 100,
      extra: true,
    });
    const verdict = await verify(signed(body));
    expect(verdict.ok && verdict.event).toMatchObject({ at: TS * 1000, priority: 100, state: 'FAULT' });
  });

  it('accepts upper-case hex and surrounding spaces', async () => {
    const request = signed(BODY);
    const sig = signHook(SECRET, TS, 'pi-b', BODY);
    request.headers[SIGNATURE_HEADER] = ` v2=${sig.slice(3).toUpperCase()} `;
    expect((await verify(request)).ok).toBe(true);
  });

  it('refuses unsigned requests', async () => {
    for (const drop of [TIMESTAMP_HEADER, NODE_HEADER, SIGNATURE_HEADER]) {
      const request = signed(BODY);
      delete request.headers[drop];
      expect(await verify(request)).toMatchObject({
        ok: false,
        status: 401,
        error: expect.stringMatching(/unsigned/),
      });
    }
  });

  it('refuses malformed headers and repeated headers', async () => {
    const cases: Array<Record<string, string | string[]>> = [
      { [TIMESTAMP_HEADER]: 'yesterday' },
      { [TIMESTAMP_HEADER]: `${TS}.5` },
      { [SIGNATURE_HEADER]: 'v3=00' },
      { [SIGNATURE_HEADER]: `v2=${'z'.repeat(64)}` },
      { [SIGNATURE_HEADER]: 'v2=abcd' },
      { [SIGNATURE_HEADER]: `v1=${'a'.repeat(64)}` },
      { [TIMESTAMP_HEADER]: [String(TS), String(TS)] },
      { [NODE_HEADER]: 'pi b' },
      { [NODE_HEADER]: ['pi-a', 'pi-b'] },
    ];
    for (const override of cases) {
      const request = signed(BODY);
      const verdict = await verify({ ...request, headers: { ...request.headers, ...override } });
      expect(verdict).toMatchObject({ ok: false, status: 401 });
    }
  });

  it('refuses a tampered body, a wrong secret and a signature for another timestamp', async () => {
    const tampered = signed(BODY);
    expect(await verify({ ...tampered, rawBody: Buffer.from(BODY.replace('pi-b', 'pi-c')) })).toMatchObject({
      status: 401,
      error: 'bad signature',
    });
    expect(await verify(signed(BODY, TS, 'another-secret-entirely'))).toMatchObject({
      status: 401,
      error: 'bad signature',
    });
    const shifted = signed(BODY);
    shifted.headers[TIMESTAMP_HEADER] = String(TS - 1);
    expect(await verify(shifted)).toMatchObject({ status: 401, error: 'bad signature' });
  });

  it('refuses timestamps outside the window, both ways, and accepts its edges', async () => {
    expect(await verify(signed(BODY, TS - 301))).toMatchObject({
      status: 401,
      error: expect.stringMatching(/window/),
    });
    expect(await verify(signed(BODY, TS + 301))).toMatchObject({
      status: 401,
      error: expect.stringMatching(/window/),
    });
    expect((await verify(signed(BODY, TS - 300))).ok).toBe(true);
    expect((await verify(signed(BODY, TS + 300))).ok).toBe(true);
  });

  it('takes a request again within the window as a duplicate and remembers only genuine, well-formed events', async () => {
    const seen = seenSet();
    const request = signed(BODY);
    expect(await verify(request, seen)).toMatchObject({ ok: true, duplicate: false });
    expect(await verify(request, seen)).toMatchObject({ ok: true, duplicate: true });
    expect(seen.keys.size).toBe(1);
    await verify({ ...request, rawBody: Buffer.from('{}') }, seen);
    await verify(signed('{"node":"x"}'), seen);
    await verify(signed('not json'), seen);
    expect(seen.keys.size).toBe(1);
  });

  it('answers 400 for signed non-JSON and 422 with problems for a signed wrong shape', async () => {
    expect(await verify(signed('{"node":'))).toMatchObject({ ok: false, status: 400 });
    expect(await verify({ ...signed(''), rawBody: Buffer.from([0xff, 0xfe]) })).toMatchObject({
      status: 401,
    });
    const bytes = Buffer.from([0x7b, 0xff, 0x7d]);
    const request = {
      headers: {
        [TIMESTAMP_HEADER]: String(TS),
        [NODE_HEADER]: 'pi-b',
        [SIGNATURE_HEADER]: signHook(SECRET, TS, 'pi-b', bytes),
      },
      rawBody: bytes,
    };
    expect(await verify(request)).toMatchObject({ ok: false, status: 400 });
    const verdict = await verify(signed(JSON.stringify({ node: 'pi a', instance: 'VI_1', state: 'MAYBE' })));
    expect(verdict).toMatchObject({
      ok: false,
      status: 422,
      problems: ['node: must be a host name', 'state: must be MASTER, BACKUP, FAULT or STOP'],
    });
  });
});

describe('signHook', () => {
  it('is HMAC-SHA256 over "<ts>.<node>.<body>", as openssl computes it', async () => {
    // printf '%s.%s.%s' 1714533127 pi-a '{}' | openssl dgst -sha256 -hmac key
    const expected = 'v2=6a6212f8791576c3ac8b723f1601710579cffa3a80bf9b7ce901f18f3e0aff9a';
    expect(signHook('key', 1714533127, 'pi-a', '{}')).toBe(expected);
    expect(signHook('key', '1714533127', 'pi-a', Buffer.from('{}'))).toBe(expected);
  });
});

describe('per-node secrets and unknown nodes', () => {
  const perNode: HookSecrets = { shared: SECRET, perNode: new Map([['pi-a', 'pi-a-own-secret-0123456789']]) };
  const bodyOf = (node: string) => JSON.stringify({ node, instance: 'VI_1', state: 'MASTER' });

  it('refuses a node the configuration does not name (403, flagged for the audit), whatever it signs with', async () => {
    const verdict = await verify(signed(bodyOf('evil-node')));
    expect(verdict).toEqual({
      ok: false,
      status: 403,
      error: 'unknown node evil-node',
      unknownNode: 'evil-node',
    });
  });

  it("takes a node's own secret, and then not the shared one; other nodes still sign with the shared one", async () => {
    const own = 'pi-a-own-secret-0123456789';
    expect((await verify(signed(bodyOf('pi-a'), TS, own), seenSet(), NOW, perNode)).ok).toBe(true);
    expect(await verify(signed(bodyOf('pi-a'), TS, SECRET), seenSet(), NOW, perNode)).toMatchObject({
      status: 401,
      error: 'bad signature',
    });
    expect((await verify(signed(bodyOf('pi-b'), TS, SECRET), seenSet(), NOW, perNode)).ok).toBe(true);
    expect(await verify(signed(bodyOf('pi-b'), TS, own), seenSet(), NOW, perNode)).toMatchObject({
      status: 401,
    });
  });

  it('refuses a known node without a secret when there is no shared one', async () => {
    const only: HookSecrets = { shared: undefined, perNode: perNode.perNode };
    expect(await verify(signed(bodyOf('pi-b')), seenSet(), NOW, only)).toMatchObject({
      ok: false,
      status: 403,
    });
  });

  it('refuses a body that names another node than the signed header', async () => {
    expect(await verify(signed(bodyOf('pi-a'), TS, SECRET, 'pi-b'))).toMatchObject({
      ok: false,
      status: 422,
    });
  });

  it('decides from the headers alone, before the body', async () => {
    const { headers } = signed(bodyOf('pi-b'));
    const screened = screenKeepalivedHook({
      headers,
      nowMs: NOW,
      replayWindowSec: 300,
      knownNodes: KNOWN,
      secrets: SHARED,
    });
    expect(screened).toMatchObject({ ok: true, node: 'pi-b', secret: SECRET });
  });
});
