import { createServer, type IncomingHttpHeaders } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { AlertmanagerClient } from '../../src/alerts/alertmanager-api.js';
import { alertmanagerAuthFrom } from '../../src/config/read-env.js';
import { ErrorCode, isOkomeError } from '../../src/errors.js';

/**
 * The Alertmanager client's edges the real Alertmanager does not show by itself: the auth header
 * each kind sends, a server that never answers (the deadline), a 4xx said as it came.
 */

let closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.reverse()) await c();
  closers = [];
});

async function server(
  answer: (headers: IncomingHttpHeaders, body: string) => { status: number; body: string } | 'hang',
): Promise<string> {
  const s = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      const a = answer(req.headers, body);
      if (a === 'hang') return;
      res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body);
    });
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        s.closeAllConnections();
        s.close(() => resolve());
      }),
  );
  const address = s.address();
  return `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
}

const silence = {
  matchers: [{ name: 'alertname', value: 'X', isRegex: false, isEqual: true }],
  startsAt: 0,
  endsAt: 3_600_000,
  createdBy: 'alice',
  comment: 'c',
};

describe('Alertmanager API client', () => {
  it('sends the bearer or basic credentials the configuration asks for', async () => {
    const seen: (string | undefined)[] = [];
    const url = await server((headers) => {
      seen.push(headers.authorization);
      return { status: 200, body: '{"silenceID":"s-1"}' };
    });
    for (const auth of [
      alertmanagerAuthFrom('bearer', {
        alertmanagerApiToken: 'tok',
        alertmanagerApiUser: undefined,
        alertmanagerApiPassword: undefined,
      }),
      alertmanagerAuthFrom('basic', {
        alertmanagerApiToken: undefined,
        alertmanagerApiUser: 'am',
        alertmanagerApiPassword: 'pw',
      }),
      alertmanagerAuthFrom('none', {
        alertmanagerApiToken: 'ignored',
        alertmanagerApiUser: undefined,
        alertmanagerApiPassword: undefined,
      }),
    ]) {
      const client = new AlertmanagerClient({ url, auth, timeoutMs: 2000 });
      expect(await client.createSilence(silence)).toBe('s-1');
      await client.close();
    }
    expect(seen).toEqual(['Bearer tok', `Basic ${Buffer.from('am:pw').toString('base64')}`, undefined]);
  });

  it('a kind whose variables are unset is an error naming them', () => {
    const none = {
      alertmanagerApiToken: undefined,
      alertmanagerApiUser: undefined,
      alertmanagerApiPassword: undefined,
    };
    expect(() => alertmanagerAuthFrom('bearer', none)).toThrow(/OKOME_ALERTMANAGER_API_TOKEN is not set/);
    expect(() => alertmanagerAuthFrom('basic', { ...none, alertmanagerApiUser: 'am' })).toThrow(
      /OKOME_ALERTMANAGER_API_PASSWORD/,
    );
  });

  it('a server that never answers fails within the deadline; a 4xx is said as it came', async () => {
    const hanging = new AlertmanagerClient({
      url: await server(() => 'hang'),
      auth: { kind: 'none' },
      timeoutMs: 300,
    });
    closers.push(() => hanging.close());
    const started = Date.now();
    const error = await hanging.createSilence(silence).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(isOkomeError(error, ErrorCode.AlertmanagerUnavailable)).toBe(true);
    expect((error as Error).message).toMatch(/did not answer: timeout after 300 ms/);

    const refusing = new AlertmanagerClient({
      url: await server(() => ({
        status: 400,
        body: '"silence invalid: at least one matcher must not match the empty string"',
      })),
      auth: { kind: 'none' },
      timeoutMs: 2000,
    });
    closers.push(() => refusing.close());
    const refused = await refusing.createSilence(silence).catch((e: unknown) => e);
    expect(isOkomeError(refused, ErrorCode.AlertmanagerRejected)).toBe(true);
    expect((refused as Error).message).toMatch(/HTTP 400 "silence invalid: at least one matcher/);
  });
});
