import { describe, expect, it } from 'vitest';
import {
  type MarkSeen,
  SIGNATURE_HEADER,
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

function signed(body: string, ts: number | string = TS, secret = SECRET) {
  return {
    headers: <Record<string, string | string[]>>{
      [TIMESTAMP_HEADER]: String(ts),
      [SIGNATURE_HEADER]: signHook(secret, ts, body),
    },
    rawBody: Buffer.from(body),
  };
}

const BODY = JSON.stringify({ node: 'pi-b', instance: 'VI_1', state: 'MASTER', at: '2024-05-01T03:12:06Z' });

function verify(request: ReturnType<typeof signed>, markSeen: MarkSeen = seenSet(), nowMs = NOW) {
  return verifyKeepalivedHook({ ...request, secret: SECRET, nowMs, replayWindowSec: 300, markSeen });
}

describe('verifyKeepalivedHook', () => {
  it('accepts a correctly signed event', async () => {
    const verdict = await verify(signed(BODY));
    expect(verdict).toEqual({
      ok: true,
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
    const sig = signHook(SECRET, TS, BODY);
    request.headers[SIGNATURE_HEADER] = ` v1=${sig.slice(3).toUpperCase()} `;
    expect((await verify(request)).ok).toBe(true);
  });

  it('refuses unsigned requests', async () => {
    for (const drop of [TIMESTAMP_HEADER, SIGNATURE_HEADER]) {
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
      { [SIGNATURE_HEADER]: 'v2=00' },
      { [SIGNATURE_HEADER]: `v1=${'z'.repeat(64)}` },
      { [SIGNATURE_HEADER]: 'v1=abcd' },
      { [TIMESTAMP_HEADER]: [String(TS), String(TS)] },
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

  it('refuses a replay within the window and remembers only genuine, well-formed events', async () => {
    const seen = seenSet();
    const request = signed(BODY);
    expect((await verify(request, seen)).ok).toBe(true);
    expect(await verify(request, seen)).toMatchObject({ ok: false, status: 401, error: 'replayed request' });
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
      headers: { [TIMESTAMP_HEADER]: String(TS), [SIGNATURE_HEADER]: signHook(SECRET, TS, bytes) },
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
  it('is HMAC-SHA256 over "<ts>.<body>", as openssl computes it', async () => {
    // printf '%s.%s' 1714533127 '{}' | openssl dgst -sha256 -hmac key
    const expected = 'v1=e10a4a8eaad0066a8cf9fc1098a7a4f40622985f1cca4277cc7bf8ebb0257934';
    expect(signHook('key', 1714533127, '{}')).toBe(expected);
    expect(signHook('key', '1714533127', Buffer.from('{}'))).toBe(expected);
  });
});
