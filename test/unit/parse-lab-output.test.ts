import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as parse from '../../src/domain/parse/index.js';

/**
 * The parsers on real output of the production commands, captured from the lab over SSH as
 * the lab user (test/support/lab/capture-fixtures.ts), with the lab healthy and the VIP on pi-a.
 */
const dir = join(import.meta.dirname, '../fixtures/parse/lab');
const out = (name: string) => readFileSync(join(dir, `${name}.txt`), 'utf8');
const exit = (name: string) => Number(readFileSync(join(dir, `${name}.exit`), 'utf8').trim());

describe('parsers on output captured from the lab', () => {
  it.each(['pi-a-serviceState-nginx', 'pi-a-serviceState-keepalived', 'pi-b-serviceState-redis-server'])(
    '%s: active',
    (name) => {
      expect(parse.parseServiceState(out(name), exit(name))).toEqual({ kind: 'active' });
    },
  );

  it('ip -o addr show: the VIP on pi-a only', () => {
    const a = parse.parseIpAddr(out('pi-a-vipOwnership'));
    const b = parse.parseIpAddr(out('pi-b-vipOwnership'));
    if (a.kind === 'unknown' || b.kind === 'unknown') throw new Error('unparsed');
    expect(parse.holdsAddress(a, '10.86.0.18')).toBe(true);
    expect(parse.holdsAddress(b, '10.86.0.18')).toBe(false);
    expect(parse.holdsAddress(a, '10.86.0.20')).toBe(true);
  });

  it('df -P /, /proc/meminfo, ip -o link show', () => {
    const df = parse.parseDf(out('pi-a-disk'));
    expect(df.kind === 'mounts' && parse.mountAt(df, '/')?.usePercent).toBeGreaterThan(0);
    const mem = parse.parseMeminfo(out('pi-a-memory'));
    expect(mem.kind === 'memory' && mem.totalKb).toBeGreaterThan(0);
    const links = parse.parseIpLink(out('pi-a-linkState'));
    if (links.kind === 'unknown') throw new Error(links.reason);
    expect(links.links.filter((l) => l.ifname !== 'lo').every(parse.isLinkUsable)).toBe(true);
  });

  it('chaos flag absent, iptables with default policies only', () => {
    expect(parse.parseChaosFlag(out('pi-b-chaosFlag'))).toEqual({ kind: 'absent' });
    const fw = parse.parseIptables(out('pi-a-firewallRules'), []);
    expect(fw.kind === 'iptables' && fw.unexpected).toEqual([]);
  });

  it('sudo nginx -T: every API/stream location unbuffered with 600 s timeouts', () => {
    const s = parse.parseStreamingDirectives(out('pi-a-nginxConfig'));
    if (s.kind === 'unknown') throw new Error(s.reason);
    expect(s.locations.length).toBeGreaterThan(0);
    expect(s.locations.filter((l) => l.missing.length > 0)).toEqual([]);
  });

  it('access log tail with cache= fields, and an empty log on the cold spare', () => {
    const a = parse.parseAccessLogHitRatio(out('pi-a-accessLogTail'));
    expect(a.kind === 'hit-ratio' && a.counts.HIT + a.counts.MISS).toBeGreaterThan(0);
    expect(parse.parseAccessLogHitRatio(out('pi-b-accessLogTail')).kind).toBe('unknown');
  });

  it('journalctl -u keepalived: pi-a entered MASTER, pi-b BACKUP', () => {
    const a = parse.parseJournal(out('pi-a-journalTail'));
    const b = parse.parseJournal(out('pi-b-journalTail'));
    if (a.kind === 'unknown' || b.kind === 'unknown') throw new Error('unparsed');
    expect(parse.keepalivedTransitions(a.entries).at(-1)?.state).toBe('MASTER');
    expect(parse.keepalivedTransitions(b.entries).at(-1)?.state).toBe('BACKUP');
  });

  it('systemctl status okome-prewarm.timer: active (waiting) on pi-a, not found on pi-b', () => {
    const a = parse.parseSystemctlStatus(out('pi-a-prewarmTimer'), exit('pi-a-prewarmTimer'));
    expect(a).toMatchObject({ kind: 'status', activeState: 'active', subState: 'waiting' });
    expect(parse.parseSystemctlStatus(out('pi-b-prewarmTimer'), exit('pi-b-prewarmTimer')).kind).toBe(
      'not-found',
    );
  });
});
