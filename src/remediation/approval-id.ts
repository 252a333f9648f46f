import { randomBytes } from 'node:crypto';
import { z } from 'zod';

// RFC 4648 base32, lower-case: no characters that need escaping in a button value or a log.
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const LENGTH = 20;

/** `ap_` + 20 base32 characters (100 random bits): unguessable, so a forged button value finds nothing. */
export const APPROVAL_ID = /^ap_[a-z2-7]{20}$/;

/** Parses a button value coming back from Slack: only a well-formed approval id passes. */
export const approvalIdSchema = z.string().regex(APPROVAL_ID);

export function newApprovalId(random: (size: number) => Uint8Array = randomBytes): string {
  const bytes = random(Math.ceil((LENGTH * 5) / 8));
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < LENGTH) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return `ap_${out}`;
}
