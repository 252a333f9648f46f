import type { NodePin } from '../config/host-key-pins.js';
import type { ResolvedNode } from '../config/load-config.js';
import { type OfferedHostKey, scanHostKey } from '../probes/host-key-scan.js';

/** What a node's sshd proved against what the configuration pins. */
export type HostKeyVerdict =
  | { readonly kind: 'match'; readonly offered: OfferedHostKey }
  | { readonly kind: 'mismatch'; readonly offered: OfferedHostKey; readonly pinned: string }
  | { readonly kind: 'unpinned'; readonly offered: OfferedHostKey; readonly placeholder: string | undefined }
  | { readonly kind: 'unreachable'; readonly reason: string };

/** Scans one node's host key (bounded by `timeoutMs`) and judges it against its pin. */
export async function hostKeyVerdict(
  node: ResolvedNode,
  pin: NodePin['state'],
  options: { readonly timeoutMs: number; readonly signal?: AbortSignal },
): Promise<HostKeyVerdict> {
  let offered: OfferedHostKey;
  try {
    offered = await scanHostKey({ address: node.address, port: node.ssh.port, user: node.ssh.user }, options);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { kind: 'unreachable', reason: message.replace(/^ssh \S+: /, '') };
  }
  if (pin.kind === 'missing') return { kind: 'unpinned', offered, placeholder: undefined };
  if (pin.kind === 'placeholder') return { kind: 'unpinned', offered, placeholder: pin.value };
  return offered.fingerprint === pin.value
    ? { kind: 'match', offered }
    : { kind: 'mismatch', offered, pinned: pin.value };
}

/** `ED25519 256 SHA256:…`, the fields `ssh-keygen -lf` prints. */
export function describeOffered(offered: OfferedHostKey): string {
  return `${offered.type}${offered.bits === undefined ? '' : ` ${offered.bits}`} ${offered.fingerprint}`;
}

/** Where the node keeps the public half of the key it offered (Debian's names). */
export function hostKeyFile(offered: OfferedHostKey): string {
  return `/etc/ssh/ssh_host_${offered.type.toLowerCase()}_key.pub`;
}

/** The warning a mismatch gets: never a reason to re-pin without looking. */
export function mismatchWarning(node: ResolvedNode, index: number, offered: OfferedHostKey): string {
  return (
    `WARNING: ${node.name} (${node.address}:${node.ssh.port}) proved a different host key than the one pinned. ` +
    `Either ${node.name} was reinstalled or its SSH host keys regenerated, or something between here and ` +
    `${node.name} is intercepting the connection (man in the middle). okome refuses to connect to it and ` +
    `changed nothing. Check on ${node.name}'s own console (ssh-keygen -lf ${hostKeyFile(offered)}); ` +
    `only if that shows the new key, replace nodes[${index}].ssh.hostKey by hand.`
  );
}
