import { excerpt, splitLines, type Unknown, unknown } from './result.js';

export interface IpLink {
  readonly ifindex: number;
  readonly ifname: string;
  /** What follows `@` (`if7` for a veth peer in another namespace, or the parent of a VLAN). */
  readonly peer: string | null;
  readonly flags: readonly string[];
  /** Administratively up (`UP` flag). */
  readonly up: boolean;
  /** Carrier present (`LOWER_UP` flag). */
  readonly lowerUp: boolean;
  readonly noCarrier: boolean;
  /** Operational state: `UP`, `DOWN`, `UNKNOWN` (loopback), `LOWERLAYERDOWN`, `DORMANT`… */
  readonly state: string;
  readonly mtu: number | null;
  readonly mac: string | null;
}

export interface IpLinks {
  readonly kind: 'links';
  readonly links: readonly IpLink[];
  readonly skippedLines: number;
}

export type IpLinkResult = IpLinks | Unknown;

const LINE = /^(\d+):\s+([^\s:@]+)(?:@([^\s:]+))?:\s+<([^>]*)>\s*(.*)$/;

/** Reads `ip -o link show`. A line without `state` is treated as cut short and skipped. */
export function parseIpLink(stdout: string): IpLinkResult {
  const lines = splitLines(stdout).filter((l) => l.trim() !== '');
  if (lines.length === 0) return unknown('ip -o link show printed nothing');
  const links: IpLink[] = [];
  for (const line of lines) {
    const link = parseLinkLine(line);
    if (link) links.push(link);
  }
  if (links.length === 0)
    return unknown(`no interface lines in ip -o link output: ${excerpt(lines[0] ?? '')}`);
  return { kind: 'links', links, skippedLines: lines.length - links.length };
}

function parseLinkLine(line: string): IpLink | null {
  const m = LINE.exec(line);
  if (!m?.[1] || !m[2] || m[4] === undefined) return null;
  const backslash = (m[5] ?? '').indexOf('\\');
  const attrs = (backslash < 0 ? (m[5] ?? '') : (m[5] ?? '').slice(0, backslash)).split(/\s+/);
  const linkPart = backslash < 0 ? '' : (m[5] ?? '').slice(backslash + 1);
  const value = (key: string): string | null => {
    const i = attrs.indexOf(key);
    return i < 0 ? null : (attrs[i + 1] ?? null);
  };
  const state = value('state');
  if (state === null) return null;
  const flags = m[4].split(',').filter((f) => f !== '');
  const mtu = Number(value('mtu'));
  const mac = /link\/\S+\s+([0-9a-f]{2}(?::[0-9a-f]{2})+)/i.exec(linkPart)?.[1] ?? null;
  return {
    ifindex: Number(m[1]),
    ifname: m[2],
    peer: m[3] ?? null,
    flags,
    up: flags.includes('UP'),
    lowerUp: flags.includes('LOWER_UP'),
    noCarrier: flags.includes('NO-CARRIER'),
    state,
    mtu: Number.isInteger(mtu) && mtu > 0 ? mtu : null,
    mac: mac?.toLowerCase() ?? null,
  };
}

/** Up and carrying traffic: admin up, carrier present, and not operationally down. */
export function isLinkUsable(link: IpLink): boolean {
  return link.up && link.lowerUp && (link.state === 'UP' || link.state === 'UNKNOWN');
}
