import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  findAddress,
  holdsAddress,
  type IpAddresses,
  isLinkUsable,
  parseIpAddr,
  parseIpLink,
} from '../../src/domain/parse/index.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/parse', name), 'utf8');

function addresses(text: string): IpAddresses {
  const r = parseIpAddr(text);
  if (r.kind !== 'addresses') throw new Error(`expected addresses, got ${r.reason}`);
  return r;
}

describe('parseIpAddr (ip -o addr show)', () => {
  it('reads the node address and the VIP as a secondary', () => {
    const r = addresses(fixture('ip-addr-vip.txt'));
    expect(r.skippedLines).toBe(0);
    expect(r.addresses).toHaveLength(8);
    expect(findAddress(r, '10.86.0.20')).toEqual({
      ifindex: 3,
      ifname: 'eth0',
      family: 'inet',
      address: '10.86.0.20',
      prefix: 24,
      scope: 'global',
      secondary: false,
      flags: [],
      label: 'eth0',
    });
    expect(findAddress(r, '10.86.0.18')).toMatchObject({ ifname: 'eth0', prefix: 24, secondary: true });
    expect(holdsAddress(r, '10.86.0.18')).toBe(true);
    expect(holdsAddress(r, ' 10.86.0.18 ')).toBe(true);
    expect(holdsAddress(r, '10.86.0.1')).toBe(false);
    expect(holdsAddress(r, '10.86.0.180')).toBe(false);
  });

  it('reads IPv6 lines, loopback and flags', () => {
    const r = addresses(fixture('ip-addr-vip.txt'));
    expect(findAddress(r, '::1')).toMatchObject({
      ifname: 'lo',
      family: 'inet6',
      prefix: 128,
      scope: 'host',
      label: null,
    });
    expect(findAddress(r, 'FD00:86::20')).toMatchObject({ family: 'inet6', prefix: 64, flags: ['nodad'] });
    expect(findAddress(r, 'fe80::c05f:8ff:fe77:2ea8')).toMatchObject({ scope: 'link', flags: ['tentative'] });
    expect(findAddress(r, '127.0.0.1')).toMatchObject({
      ifname: 'lo',
      prefix: 8,
      scope: 'host',
      label: 'lo',
    });
  });

  it("this machine's own output", () => {
    const r = addresses(fixture('ip-addr-host.txt'));
    expect(r.addresses.map((a) => `${a.ifname} ${a.address}/${a.prefix}`)).toEqual([
      'lo 127.0.0.1/8',
      'lo ::1/128',
      'eth0 192.0.2.2/24',
      'eth0 fd00::2/64',
      'eth0 fe80::fc:ff:fe00:1/64',
    ]);
  });

  it('labels, peers and a line cut short', () => {
    const text = [
      '3: eth0    inet 10.86.0.18/32 scope global eth0:vip\\       valid_lft forever preferred_lft forever',
      '9: tun0    inet 10.8.0.1 peer 10.8.0.2/32 scope global tun0\\       valid_lft forever preferred_lft forever',
      '3: eth0    inet 10.86.0.1', // the output cap cut "10.86.0.18/24 …" here
    ].join('\n');
    const r = addresses(text);
    expect(r.addresses.map((a) => [a.address, a.prefix, a.label])).toEqual([
      ['10.86.0.18', 32, 'eth0:vip'],
      ['10.8.0.1', 32, 'tun0'],
    ]);
    expect(r.skippedLines).toBe(1);
    expect(holdsAddress(r, '10.86.0.1')).toBe(false);
  });

  it('garbage is unknown', () => {
    expect(parseIpAddr('')).toEqual({ kind: 'unknown', reason: 'ip -o addr show printed nothing' });
    expect(parseIpAddr('Device "eth9" does not exist.\n')).toEqual({
      kind: 'unknown',
      reason: 'no address lines in ip -o addr output: "Device \\"eth9\\" does not exist."',
    });
    expect(parseIpAddr('3: eth0    inet 300.1.1.1/24 scope global eth0\n').kind).toBe('unknown');
    expect(parseIpAddr('3: eth0    inet 10.1.1.1/33 scope global eth0\n').kind).toBe('unknown');
  });
});

describe('parseIpLink (ip -o link show)', () => {
  it('up, no carrier, administratively down, veth peers', () => {
    const r = parseIpLink(fixture('ip-link-mixed.txt'));
    if (r.kind !== 'links') throw new Error(r.reason);
    const byName = new Map(r.links.map((l) => [l.ifname, l]));
    expect(byName.get('eth0')).toEqual({
      ifindex: 3,
      ifname: 'eth0',
      peer: 'veth-peer',
      flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
      up: true,
      lowerUp: true,
      noCarrier: false,
      state: 'UP',
      mtu: 1500,
      mac: 'c2:5f:08:77:2e:a8',
    });
    expect(byName.get('eth1')).toMatchObject({
      up: true,
      lowerUp: false,
      noCarrier: true,
      state: 'LOWERLAYERDOWN',
    });
    expect(byName.get('eth2')).toMatchObject({ up: false, lowerUp: false, state: 'DOWN' });
    expect(byName.get('lo')).toMatchObject({ state: 'UNKNOWN', mtu: 65536 });
    expect(r.links.filter(isLinkUsable).map((l) => l.ifname)).toEqual(['lo', 'veth-peer', 'eth0']);
  });

  it("this machine's own output, and the brief's eth0@if7 form", () => {
    const host = parseIpLink(fixture('ip-link-host.txt'));
    expect(host).toMatchObject({ kind: 'links', skippedLines: 0 });
    const line =
      '2: eth0@if7: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\\    link/ether 0a:58:0a:56:00:14 brd ff:ff:ff:ff:ff:ff link-netnsid 0';
    expect(parseIpLink(line)).toMatchObject({
      links: [{ ifname: 'eth0', peer: 'if7', state: 'UP', mac: '0a:58:0a:56:00:14' }],
    });
  });

  it('garbage and cut-short lines are unknown or skipped', () => {
    expect(parseIpLink('')).toMatchObject({ kind: 'unknown', reason: 'ip -o link show printed nothing' });
    expect(parseIpLink('\u0000\u0001binary').kind).toBe('unknown');
    const cut = parseIpLink(`${fixture('ip-link-host.txt')}5: eth1: <BROADCAST,MULTICAST,UP> mtu 1500 qdisc`);
    expect(cut).toMatchObject({ kind: 'links', skippedLines: 1 });
  });
});
