import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseIptables } from '../../src/domain/parse/index.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/parse', name), 'utf8');

describe('parseIptables (iptables -S)', () => {
  it('default policies only: nothing unexpected', () => {
    expect(parseIptables(fixture('iptables-host.txt'), [])).toEqual({
      kind: 'iptables',
      policies: [
        { chain: 'INPUT', target: 'ACCEPT' },
        { chain: 'FORWARD', target: 'ACCEPT' },
        { chain: 'OUTPUT', target: 'ACCEPT' },
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
    expect(r.chains).toEqual(['CHAOS']);
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
    expect(parseIptables('', [])).toEqual({
      kind: 'unknown',
      reason: 'no default policies (-P lines): not iptables -S output',
    });
    expect(
      parseIptables(
        'iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied\n',
        [],
      ),
    ).toMatchObject({ kind: 'unknown', reason: expect.stringMatching(/^not an iptables -S line/) });
    expect(parseIptables('-A INPUT -j DROP\n', [])).toMatchObject({ kind: 'unknown' });
    expect(parseIptables('-P INPUT\n', [])).toMatchObject({ kind: 'unknown' });
  });
});
