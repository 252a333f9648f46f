import { excerpt, splitLines, type Unknown, unknown } from './result.js';

export interface IptablesPolicy {
  readonly chain: string;
  readonly target: string;
}

export interface IptablesRules {
  readonly kind: 'iptables';
  readonly policies: readonly IptablesPolicy[];
  /** User chains (`-N NAME`). */
  readonly chains: readonly string[];
  /** Rules (`-A …`), whitespace-normalised. */
  readonly rules: readonly string[];
  /**
   * Lines that should not be there: non-ACCEPT default policies, user chains and rules, each
   * unless the allowlist names it (whitespace-normalised comparison).
   */
  readonly unexpected: readonly string[];
  /** Comment lines, e.g. iptables-nft's "# Warning: iptables-legacy tables present". */
  readonly notes: readonly string[];
}

export type IptablesResult = IptablesRules | Unknown;

export function normalizeRule(rule: string): string {
  return rule.trim().replace(/\s+/g, ' ');
}

/** Reads `iptables -S` (the filter table). */
export function parseIptables(stdout: string, allowedRules: readonly string[]): IptablesResult {
  const allowed = new Set(allowedRules.map(normalizeRule));
  const policies: IptablesPolicy[] = [];
  const chains: string[] = [];
  const rules: string[] = [];
  const unexpected: string[] = [];
  const notes: string[] = [];
  for (const raw of splitLines(stdout)) {
    const line = normalizeRule(raw);
    if (line === '') continue;
    if (line.startsWith('#')) {
      notes.push(line);
      continue;
    }
    const [flag, chain, target] = line.split(' ');
    if (flag === '-P' && chain && target) {
      policies.push({ chain, target });
      if (target !== 'ACCEPT' && !allowed.has(line)) unexpected.push(line);
    } else if (flag === '-N' && chain) {
      chains.push(chain);
      if (!allowed.has(line)) unexpected.push(line);
    } else if (flag === '-A' && chain && target) {
      rules.push(line);
      if (!allowed.has(line)) unexpected.push(line);
    } else {
      // iptables -S prints nothing else; reading past it would hide a rule we cannot judge.
      return unknown(`not an iptables -S line: ${excerpt(raw)}`);
    }
  }
  if (policies.length === 0) return unknown('no default policies (-P lines): not iptables -S output');
  return { kind: 'iptables', policies, chains, rules, unexpected, notes };
}
