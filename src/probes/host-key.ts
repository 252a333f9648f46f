import { createHash } from 'node:crypto';

/**
 * A host key's fingerprint as OpenSSH prints it (`ssh-keygen -lf`): `SHA256:` followed by the
 * unpadded base64 of the SHA-256 of the raw public key blob.
 */
export function sshFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}
