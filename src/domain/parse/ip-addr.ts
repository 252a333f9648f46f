import { excerpt, splitLines, type Unknown, unknown } from './result.js';

export interface IpAddress {
  readonly ifindex: number;
  readonly ifname: string;
  readonly family: 'inet' | 'inet6';
  readonly address: string;
  readonly prefix: number;
  readonly scope: string;
  /** A secondary IPv4 address: how keepalived's VIP usually shows up next to the node's own. */
  readonly secondary: boolean;
  /** Other flags as printed: `dynamic`, `tentative`, `deprecated`, `dadfailed`, `nodad`… */
  readonly flags: readonly string[];
  /** IPv4 label (`eth0`, `eth0:vip`); null for IPv6. */
  readonly label: string | null;
}

export interface IpAddresses {
  readonly kind: 'addresses';
  readonly addresses: readonly IpAddress[];
  /** Lines that were not a complete address line (e.g. one cut by the output cap). */
  readonly skippedLines: number;
}

export type IpAddrResult = IpAddresses | Unknown;

const HEAD = /^(\d+):\s+(\S+)\s+(inet6?)\s+(\S+)\s*(.*)$/;
// Attributes of `ip -o addr` that take a value; every other word is a flag.
const VALUED = new Set(['brd', 'peer', 'scope', 'metric', 'proto', 'anycast', 'broadcast']);
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const IPV6 = /^(?=.*:)[0-9a-fA-F:.]{2,45}$/;

/**
 * Reads `ip -o addr show`: one line per address, the lifetimes after a literal backslash.
 * A line without its `scope` is treated as cut short and skipped rather than half-read, so a
 * truncated `10.86.0.1` can never pass for `10.86.0.18`.
 */
export function parseIpAddr(stdout: string): IpAddrResult {
  const lines = splitLines(stdout).filter((l) => l.trim() !== '');
  if (lines.length === 0) return unknown('ip -o addr show printed nothing');
  const addresses: IpAddress[] = [];
  for (const line of lines) {
    const parsed = parseAddrLine(line);
    if (parsed) addresses.push(parsed);
  }
  if (addresses.length === 0)
    return unknown(`no address lines in ip -o addr output: ${excerpt(lines[0] ?? '')}`);
  return { kind: 'addresses', addresses, skippedLines: lines.length - addresses.length };
}

function parseAddrLine(line: string): IpAddress | null {
  const backslash = line.indexOf('\\');
  const m = HEAD.exec(backslash < 0 ? line : line.slice(0, backslash));
  if (!m?.[1] || !m[2] || !m[4]) return null;
  const family = m[3] === 'inet6' ? 'inet6' : 'inet';
  const [address = '', prefixText] = m[4].split('/', 2);
  const maxPrefix = family === 'inet' ? 32 : 128;
  if (!(family === 'inet' ? IPV4 : IPV6).test(address)) return null;
  const prefix = prefixText === undefined ? maxPrefix : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > maxPrefix || prefixText === '') return null;

  const ifname = m[2].split('@', 1)[0] ?? m[2];
  const words = (m[5] ?? '').split(/\s+/).filter((w) => w !== '');
  let scope: string | null = null;
  let label: string | null = null;
  const flags: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i] ?? '';
    if (VALUED.has(word)) {
      if (word === 'scope') scope = words[i + 1] ?? null;
      i++;
    } else if (
      family === 'inet' &&
      i === words.length - 1 &&
      (word === ifname || word.startsWith(`${ifname}:`))
    ) {
      label = word;
    } else {
      flags.push(word);
    }
  }
  if (scope === null) return null;
  const secondary = flags.includes('secondary');
  return {
    ifindex: Number(m[1]),
    ifname,
    family,
    address: address.toLowerCase(),
    prefix,
    scope,
    secondary,
    flags: flags.filter((f) => f !== 'secondary'),
    label,
  };
}

/** The address entry for `address` (exact, case-insensitive for IPv6), if the node holds it. */
export function findAddress(parsed: IpAddresses, address: string): IpAddress | undefined {
  const wanted = address.trim().toLowerCase();
  return parsed.addresses.find((a) => a.address === wanted);
}

export function holdsAddress(parsed: IpAddresses, address: string): boolean {
  return findAddress(parsed, address) !== undefined;
}
