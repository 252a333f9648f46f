import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Journal, keepalivedTransitions, parseJournal } from '../../src/domain/parse/index.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/parse', name), 'utf8');

function journal(text: string): Journal {
  const r = parseJournal(text);
  if (r.kind !== 'journal') throw new Error(r.reason);
  return r;
}

describe('parseJournal (journalctl -u keepalived --since "10 minutes ago" --no-pager)', () => {
  it("systemd 252's short format: entries, a boot separator, a multi-line message", () => {
    const r = journal(fixture('journal-keepalived.txt'));
    expect(r.entries).toHaveLength(16);
    expect(r.boots).toBe(1);
    expect(r.noEntries).toBe(false);
    expect(r.skippedLines).toBe(0);
    expect(r.entries[0]).toEqual({
      time: 'Nov 29 03:05:40',
      host: 'pi-a',
      ident: 'Keepalived_vrrp',
      pid: 911,
      message: '(VI_1) Entering MASTER STATE',
    });
    expect(r.entries[2]).toMatchObject({ ident: 'systemd', pid: 1 });
    expect(r.entries[4]?.message).toBe("Command line: '/usr/sbin/keepalived' '--dont-fork'");
    expect(r.entries[11]?.message).toBe(
      'Script `chk_nginx` now returning 1\nnotify script output: curl: (7) Failed to connect to 127.0.0.1 port 80',
    );
  });

  it('-- No entries --', () => {
    expect(parseJournal(fixture('journal-no-entries.txt'))).toEqual({
      kind: 'journal',
      entries: [],
      noEntries: true,
      boots: 0,
      skippedLines: 0,
    });
  });

  it('older headers, an ident without pid, a space-padded day, short-iso', () => {
    const text = [
      '-- Logs begin at Sun 2026-11-01 00:00:01 UTC, end at Sun 2026-11-29 03:15:01 UTC. --',
      'Nov  9 03:12:07 pi-b kernel: eth0: renamed from veth1a2b',
      '-- Reboot --',
      'Nov 29 03:12:07 pi-b Keepalived_vrrp[77]: VRRP_Instance(VI_1) Entering BACKUP STATE',
      '2026-11-29T03:12:09+0000 pi-b Keepalived_vrrp[77]: VRRP_Instance(VI_1) Entering MASTER STATE',
      'Nov 29 03:12:10 pi-b Keepalived_vrrp[77]:',
    ].join('\n');
    const r = journal(text);
    expect(r.boots).toBe(1);
    expect(r.entries.map((e) => [e.time, e.ident, e.pid, e.message])).toEqual([
      ['Nov  9 03:12:07', 'kernel', null, 'eth0: renamed from veth1a2b'],
      ['Nov 29 03:12:07', 'Keepalived_vrrp', 77, 'VRRP_Instance(VI_1) Entering BACKUP STATE'],
      ['2026-11-29T03:12:09+0000', 'Keepalived_vrrp', 77, 'VRRP_Instance(VI_1) Entering MASTER STATE'],
      ['Nov 29 03:12:10', 'Keepalived_vrrp', 77, ''],
    ]);
    expect(keepalivedTransitions(r.entries).map((t) => [t.instance, t.state])).toEqual([
      ['VI_1', 'BACKUP'],
      ['VI_1', 'MASTER'],
    ]);
  });

  it('garbage is unknown; stray lines next to real ones are counted', () => {
    expect(parseJournal('')).toEqual({ kind: 'unknown', reason: 'journalctl printed nothing' });
    expect(parseJournal('No journal files were found.\n')).toEqual({
      kind: 'unknown',
      reason: 'no journal lines recognised in "No journal files were found.\\n"',
    });
    const mixed = journal(
      `Hint: You are currently not seeing messages from other users.\n${fixture('journal-keepalived.txt')}`,
    );
    expect(mixed.skippedLines).toBe(1);
  });
});

describe('keepalivedTransitions', () => {
  it('picks the MASTER/BACKUP/FAULT entries in order, with the instance', () => {
    const r = journal(fixture('journal-keepalived.txt'));
    expect(keepalivedTransitions(r.entries).map((t) => `${t.time} ${t.instance} ${t.state}`)).toEqual([
      'Nov 29 03:05:40 VI_1 MASTER',
      'Nov 29 03:06:02 VI_1 FAULT',
      'Nov 29 03:12:03 VI_1 BACKUP',
      'Nov 29 03:12:07 VI_1 MASTER',
      'Nov 29 03:12:09 VI_1 FAULT',
      'Nov 29 03:12:31 VI_1 BACKUP',
    ]);
    expect(keepalivedTransitions([])).toEqual([]);
  });
});
