import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isOkomeError } from '../../src/errors.js';
import { fileServeLock, serveLockPath } from '../../src/store/serve-lock.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { waitFor } from '../support/slack-emulator/index.js';

/**
 * The store's serve lock and its read-only open (issue 16 point 2), in one process; the test of
 * two `okome serve` processes is serve-lock.test.ts.
 */

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'okome-serve-lock-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function refusal(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof Error)) throw new Error('expected a refusal, got none');
  return error;
}

describe('the serve lock', () => {
  it('lets one holder in, names it to the next, and passes on after release', async () => {
    const store = join(dir, 'okome.db');
    const first = fileServeLock(store, { pid: 4242, host: 'pi-bot', now: () => Date.UTC(2026, 11, 2) });
    const second = fileServeLock(store, { pid: 5151, host: 'pi-bot', waitMs: 0 });
    await first.acquire();
    expect(existsSync(serveLockPath(store))).toBe(true);
    const error = await refusal(second.acquire());
    expect(isOkomeError(error, ErrorCode.ServeLockHeld)).toBe(true);
    expect(error.message).toContain('PID 4242 on pi-bot, since 2026-12-02T00:00:00.000Z');
    expect(error.message).toContain(serveLockPath(store));
    await first.release();
    await second.acquire();
    const third = fileServeLock(store, { waitMs: 0 });
    expect((await refusal(third.acquire())).message).toContain('PID 5151');
    await second.release();
  });

  it('lets exactly one of six processes in when they race for it at once', async () => {
    const store = join(dir, 'okome.db');
    // Each process waits for "go" on stdin, tries once, says how it went and holds until stdin ends.
    const script = `
      import { fileServeLock } from './src/store/serve-lock.ts';
      const lock = fileServeLock(${JSON.stringify(store)});
      process.stdout.write('ready\\n');
      process.stdin.once('data', async () => {
        try { await lock.acquire(); process.stdout.write('held\\n'); }
        catch (e) { process.stdout.write(e.code + ' ' + e.message + '\\n'); }
        process.stdin.once('end', () => lock.release());
      });`;
    const racers = Array.from({ length: 6 }, () => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: join(import.meta.dirname, '../..'),
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
      });
      return { child, out: () => out };
    });
    try {
      await waitFor(() => racers.every((r) => r.out().includes('ready')), 20_000, 'six racers ready');
      for (const r of racers) r.child.stdin.write('go\n');
      await waitFor(() => racers.every((r) => r.out().split('\n').length > 2), 10_000, 'every racer done');
      const held = racers.filter((r) => r.out().includes('held'));
      expect(held).toHaveLength(1);
      for (const r of racers.filter((x) => !held.includes(x))) {
        expect(r.out()).toContain(`OKOME_SERVE_LOCK_HELD another okome serve (PID ${held[0]?.child.pid} `);
      }
    } finally {
      for (const r of racers) r.child.stdin.end();
      await Promise.all(racers.map((r) => new Promise((resolve) => r.child.once('exit', resolve))));
    }
  }, 40_000);

  it('leaves the store file itself unlocked: a reader and a writer connection open beside the holder', async () => {
    const path = join(dir, 'okome.db');
    const lock = fileServeLock(path);
    await lock.acquire();
    const writer = openSqliteStore({ path });
    const reader = openSqliteStore({ path, readOnly: true });
    expect(await reader.auditSince(0)).toEqual([]);
    await Promise.all([writer.close(), reader.close(), lock.release()]);
  });

  it('refuses a lock file it cannot create with a store error, not a crash', async () => {
    const error = await refusal(fileServeLock(join(dir, 'missing', 'okome.db')).acquire());
    expect(isOkomeError(error, ErrorCode.StoreFailed)).toBe(true);
    expect(error.message).toContain('lock file');
  });
});

describe('the read-only store', () => {
  it('reads rows a writer committed, and refuses to write', async () => {
    const path = join(dir, 'okome.db');
    const writer = openSqliteStore({ path });
    await writer.openOrReuseIncident({
      key: '1:pi-a',
      number: '1',
      title: 't',
      channel: 'C1',
      requester: 'U1',
      now: 1,
    });
    const reader = openSqliteStore({ path, readOnly: true });
    expect((await reader.openIncidents()).map((i) => i.key)).toEqual(['1:pi-a']);
    const error = await refusal(
      reader.openOrReuseIncident({
        key: '2',
        number: '2',
        title: 't',
        channel: 'C1',
        requester: 'U1',
        now: 2,
      }),
    );
    expect(error.message).toMatch(/readonly/i);
    await Promise.all([writer.close(), reader.close()]);
  });

  it('creates nothing where there is no database, and says serve makes it', async () => {
    const path = join(dir, 'okome.db');
    const error = await refusal(Promise.resolve().then(() => openSqliteStore({ path, readOnly: true })));
    expect(isOkomeError(error, ErrorCode.StoreFailed)).toBe(true);
    expect(error.message).toContain('`okome serve` creates it');
    expect(existsSync(path)).toBe(false);
  });

  it('refuses a database at another schema version instead of migrating it', async () => {
    const path = join(dir, 'okome.db');
    await openSqliteStore({ path }).close();
    const error = await refusal(
      Promise.resolve().then(() => openSqliteStore({ path, readOnly: true, migrations: ['SELECT 1'] })),
    );
    expect(isOkomeError(error, ErrorCode.StoreSchemaTooNew)).toBe(true);
  });
});
