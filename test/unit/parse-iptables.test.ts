import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseIptables } from '../../src/domain/parse/index.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/parse', name), 'utf8');

describe('parseIptables (iptables-save, every table)', () => {
  it('sees a rule in every table, prefixed with its table outside filter', () => {
    const r = parseIptables(fixture('iptables-save-chaos.txt'), []);
    if (r.kind !== 'iptables') throw new Error(r.reason);
    expect(r.tables).toEqual(['mangle', 'raw', 'filter', 'nat']);
    expect(r.policies).toHaveLength(14);
    expect(r.policies.every((p) => p.target === 'ACCEPT')).toBe(true);
    expect(r.unexpected).toEqual([
      '-t mangle -A OUTPUT -p tcp -m tcp --dport 22 -j MARK --set-xmark 0x1/0xffffffff',
      '-t raw -A PREROUTING -p tcp -m tcp --dport 6379 -j NOTRACK',
      '-A INPUT -p tcp -m tcp --dport 6380 -j DROP',
      '-t nat -A PREROUTING -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 9',
    ]);
    expect(r.notes).toEqual([]);
  });

  it('flushed tables, and no table at all, are clean', () => {
    expect(parseIptables(fixture('iptables-save-flushed.txt'), [])).toMatchObject({
      kind: 'iptables',
      tables: ['mangle', 'raw', 'filter', 'nat'],
      unexpected: [],
    });
    expect(parseIptables('', [])).toMatchObject({ kind: 'iptables', tables: [], unexpected: [] });
  });

  it('the allowlist names a table with -t; bare entries are filter lines', () => {
    const r = parseIptables(fixture('iptables-save-chaos.txt'), [
      '-t nat  -A PREROUTING -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 9',
      '-t filter -A INPUT -p tcp -m tcp --dport 6380 -j DROP',
      // Right rule, wrong table: still unexpected in raw.
      '-A PREROUTING -p tcp -m tcp --dport 6379 -j NOTRACK',
    ]);
    expect(r).toMatchObject({
      unexpected: [
        '-t mangle -A OUTPUT -p tcp -m tcp --dport 22 -j MARK --set-xmark 0x1/0xffffffff',
        '-t raw -A PREROUTING -p tcp -m tcp --dport 6379 -j NOTRACK',
      ],
    });
  });

  it('user chains and non-ACCEPT policies per table', () => {
    const text = '*nat\n:PREROUTING DROP [0:0]\n:CHAOS - [0:0]\n-A PREROUTING -j CHAOS\nCOMMIT\n';
    expect(parseIptables(text, [])).toMatchObject({
      policies: [{ table: 'nat', chain: 'PREROUTING', target: 'DROP' }],
      chains: ['-t nat -N CHAOS'],
      unexpected: ['-t nat -P PREROUTING DROP', '-t nat -N CHAOS', '-t nat -A PREROUTING -j CHAOS'],
    });
    expect(parseIptables('*nat\n:OUTPUT ACCEPT [0:0]\n', [])).toMatchObject({
      kind: 'unknown',
      reason: 'iptables-save output ends inside *nat (no COMMIT)',
    });
  });
});

describe('parseIptables (iptables -S, a node configured the old way)', () => {
  it('default policies only: nothing unexpected', () => {
    expect(parseIptables(fixture('iptables-host.txt'), [])).toEqual({
      kind: 'iptables',
      tables: ['filter'],
      policies: [
        { table: 'filter', chain: 'INPUT', target: 'ACCEPT' },
        { table: 'filter', chain: 'FORWARD', target: 'ACCEPT' },
        { table: 'filter', chain: 'OUTPUT', target: 'ACCEPT' },
      ],
      chains: [],
      rules: [],
      unexpected: [],
      notes: [],
    });
  });

  it('chaos rules, a user chain and a DROP policy are unexpected', () => {
    const r = parseIptables(fixture('iptables-chaos.txt'), []);
    if (r.kind !== 'iptables') throw new Error(r.reason);
    expect(r.chains).toEqual(['-N CHAOS']);
    expect(r.rules).toHaveLength(5);
    expect(r.unexpected).toEqual([
      '-P FORWARD DROP',
      '-N CHAOS',
      '-A INPUT -p tcp -m tcp --dport 6379 -j DROP',
      '-A INPUT -s 10.86.0.0/24 -p tcp -m tcp --dport 22 -m comment --comment "ssh from lab" -j ACCEPT',
      '-A INPUT -p vrrp -j ACCEPT',
      '-A INPUT -j CHAOS',
      '-A CHAOS -p tcp -m tcp --dport 80 -j REJECT --reject-with tcp-reset',
    ]);
  });

  it('the allowlist is compared with whitespace normalised, and may allow a policy', () => {
    const allowed = [
      '  -A INPUT   -p vrrp -j ACCEPT ',
      '-A INPUT -s 10.86.0.0/24 -p tcp -m tcp --dport 22 -m comment --comment "ssh from lab" -j ACCEPT',
      '-P FORWARD DROP',
    ];
    const r = parseIptables(fixture('iptables-chaos.txt'), allowed);
    expect(r).toMatchObject({
      unexpected: [
        '-N CHAOS',
        '-A INPUT -p tcp -m tcp --dport 6379 -j DROP',
        '-A INPUT -j CHAOS',
        '-A CHAOS -p tcp -m tcp --dport 80 -j REJECT --reject-with tcp-reset',
      ],
    });
  });

  it("keeps iptables-nft's warning comment as a note", () => {
    const text = `# Warning: iptables-legacy tables present, use iptables-legacy to see them\n${fixture('iptables-host.txt')}`;
    expect(parseIptables(text, [])).toMatchObject({
      kind: 'iptables',
      notes: ['# Warning: iptables-legacy tables present, use iptables-legacy to see them'],
      unexpected: [],
    });
  });

  it('garbage and errors are unknown', () => {
    expect(
      parseIptables(
        'iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied\n',
        [],
      ),
    ).toMatchObject({ kind: 'unknown', reason: expect.stringMatching(/^not an iptables-save line/) });
    expect(parseIptables('-A INPUT -j DROP\n', [])).toMatchObject({ kind: 'unknown' });
    expect(parseIptables('-P INPUT\n', [])).toMatchObject({ kind: 'unknown' });
  });
});
