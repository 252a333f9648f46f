import { createHash } from 'node:crypto';

/**
 * A host key's fingerprint as OpenSSH prints it (`ssh-keygen -lf`): `SHA256:` followed by the
 * unpadded base64 of the SHA-256 of the raw public key blob.
 */
export function sshFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** A host key's type and size as `ssh-keygen -lf` names them: `ED25519` 256, `RSA` 3072… */
export interface HostKeyKind {
  readonly type: string;
  readonly bits: number | undefined;
}

/** Reads the SSH wire strings of a public key blob (RFC 4253 §6.6): type first, then its fields. */
function wireStrings(blob: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at + 4 <= blob.length; ) {
    const length = blob.readUInt32BE(at);
    if (at + 4 + length > blob.length) break;
    out.push(blob.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return out;
}

/** The key's type and size, read from the blob the server offered. */
export function hostKeyKind(blob: Buffer): HostKeyKind {
  const [typeField, ...fields] = wireStrings(blob);
  const algorithm = typeField?.toString('latin1') ?? '';
  if (algorithm === 'ssh-ed25519') return { type: 'ED25519', bits: 256 };
  const curve = /^ecdsa-sha2-nistp(\d+)$/.exec(algorithm);
  if (curve !== null) return { type: 'ECDSA', bits: Number(curve[1]) };
  if (algorithm === 'ssh-rsa') {
    // e, then n: the modulus's bit length without the mpint's sign byte.
    const n = fields[1];
    const first = n?.findIndex((byte) => byte !== 0) ?? -1;
    if (n === undefined || first < 0) return { type: 'RSA', bits: undefined };
    return { type: 'RSA', bits: (n.length - first - 1) * 8 + (32 - Math.clz32(n[first] ?? 0)) };
  }
  if (algorithm === 'ssh-dss') return { type: 'DSA', bits: 1024 };
  return { type: algorithm.toUpperCase() || 'UNKNOWN', bits: undefined };
}
