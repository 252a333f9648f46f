import { excerpt, type Unknown, unknown } from './result.js';

export type ChaosFlag = { readonly kind: 'present' } | { readonly kind: 'absent' } | Unknown;

/**
 * Reads `test -e /etc/okome/CHAOS_ENABLE && echo present || echo absent`. Only the exact words
 * count: anything else (a login banner, an error) is not evidence either way.
 */
export function parseChaosFlag(stdout: string): ChaosFlag {
  const word = stdout.trim();
  if (word === 'present') return { kind: 'present' };
  if (word === 'absent') return { kind: 'absent' };
  if (word === '') return unknown('the chaos-flag test printed nothing');
  return unknown(`expected "present" or "absent", got ${excerpt(word)}`);
}
