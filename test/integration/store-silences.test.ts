import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silenceMatchers } from '../../src/domain/silence.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite-store.js';

let dir: string;
let store: SqliteStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'okome-store-'));
  store = openSqliteStore({ path: join(dir, 'okome.db') });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('silences in the store', () => {
  it('records a silence, lists it while active, and expires it once (compare-and-set)', async () => {
    const { incident } = await store.openOrReuseIncident({
      key: 'alert:DiskAlmostFull',
      number: 'alert',
      title: 'Alert DiskAlmostFull',
      channel: 'C0INCIDENT',
      requester: 'bot',
      now: 1000,
    });
    const matchers = silenceMatchers({ alertname: 'DiskAlmostFull', node: 'pi-b' });
    const base = {
      incidentId: incident.id,
      matchers,
      createdBy: 'U0APPROVER1',
      createdByName: 'Alice',
      startsAt: 2000,
    };
    const a = await store.insertSilence({ ...base, silenceId: 'am-1', endsAt: 2000 + 3_600_000 });
    const b = await store.insertSilence({ ...base, silenceId: 'am-2', endsAt: 3000 });
    expect(a).toMatchObject({
      silenceId: 'am-1',
      matchers,
      messageRef: null,
      expiredAt: null,
      expiredBy: null,
    });
    // b is over by time at 3000: not active any more.
    expect((await store.activeSilences(incident.id, 2500)).map((s) => s.silenceId)).toEqual(['am-1', 'am-2']);
    expect((await store.activeSilences(incident.id, 3000)).map((s) => s.silenceId)).toEqual(['am-1']);
    const ref = await store.createMessage({ channel: 'C0INCIDENT', threadRef: null, now: 2000 });
    await store.setSilenceMessageRef([a.id, b.id], ref);
    expect(await store.markSilenceExpired(a.id, 'U0APPROVER2', 4000)).toBe(true);
    expect(await store.markSilenceExpired(a.id, 'U0APPROVER1', 4001)).toBe(false);
    expect(await store.activeSilences(incident.id, 4000)).toEqual([]);
  });
});
