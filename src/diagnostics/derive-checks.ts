import { type CheckResult, couldNotJudge, factsOf } from '../domain/check-result.js';
import { ErrorCode } from '../errors.js';
import type { CheckTask } from './run-checks.js';

const TRANSPORT = new Set<string>([
  ErrorCode.SshConnectFailed,
  ErrorCode.SshHostKeyMismatch,
  ErrorCode.ProbeTimeout,
  ErrorCode.SshExecTimeout,
]);

/** SSH reachability per node, judged from every command that node was sent. */
export function deriveSsh(
  node: string,
  tasks: readonly CheckTask[],
  results: readonly CheckResult[],
): CheckResult | undefined {
  const mine = results.filter((r, i) => tasks[i]?.via === 'ssh' && r.node === node);
  if (mine.length === 0) return undefined;
  const ran = mine.filter((r) => r.errorCode === undefined || !TRANSPORT.has(r.errorCode));
  const base = {
    id: `ssh@${node}`,
    check: 'ssh' as const,
    title: `SSH to ${node}`,
    node,
    evidence: undefined,
  };
  const durationMs = Math.max(...mine.map((r) => r.durationMs));
  if (ran.length > 0) {
    return {
      ...base,
      status: 'ok',
      summary: `reachable (${ran.length}/${mine.length} commands answered)`,
      facts: { kind: 'ssh', reachable: true },
      errorCode: undefined,
      durationMs,
    };
  }
  const mismatch = mine.find((r) => r.errorCode === ErrorCode.SshHostKeyMismatch);
  const first = mismatch ?? mine[0];
  return {
    ...base,
    status: mismatch ? 'fail' : (first?.status ?? 'unknown'),
    summary: mismatch ? mismatch.summary : `unreachable: ${first?.summary ?? 'no answer'}`,
    facts: {
      kind: 'ssh',
      reachable: false,
      refused: !mismatch && mine.every((r) => factsOf(r, 'transport')?.refused === true),
    },
    errorCode: first?.errorCode,
    durationMs,
  };
}

/** Who holds the VIP, from each VIP-capable node's `ip -o addr show`. */
export function deriveVipOwner(
  vipNodes: readonly string[],
  vipAddress: string,
  results: readonly CheckResult[],
): CheckResult {
  const holders: string[] = [];
  const unknown: string[] = [];
  const why: string[] = [];
  for (const node of vipNodes) {
    const r = results.find((x) => x.id === `vip-addr@${node}`);
    const f = factsOf(r, 'vip-addr');
    if (f === undefined) {
      unknown.push(node);
      why.push(
        `${node}: ${r === undefined ? 'not checked' : couldNotJudge(r.status) ? r.summary : r.summary}`,
      );
    } else if (f.holds) holders.push(node);
  }
  const base = {
    id: 'vip-owner',
    check: 'vip-owner' as const,
    title: 'VIP ownership',
    node: undefined,
    errorCode: undefined,
    durationMs: 0,
  };
  const facts = { kind: 'vip-owner' as const, holders, unknown };
  const unseen = unknown.length > 0 ? ` (cannot see ${why.join('; ')})` : '';
  if (holders.length > 1) {
    return {
      ...base,
      status: 'fail',
      summary: `SPLIT BRAIN: ${holders.join(' and ')} all hold ${vipAddress}`,
      facts,
      evidence: undefined,
    };
  }
  if (holders.length === 1) {
    return {
      ...base,
      status: 'ok',
      summary: `${holders[0]} holds ${vipAddress}${unseen}`,
      facts,
      evidence: undefined,
    };
  }
  return unknown.length > 0
    ? {
        ...base,
        status: 'unknown',
        summary: `no reachable node holds ${vipAddress}${unseen}`,
        facts,
        evidence: undefined,
      }
    : { ...base, status: 'fail', summary: `no node holds ${vipAddress}`, facts, evidence: undefined };
}
