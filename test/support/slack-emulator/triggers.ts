// trigger_ids as Slack hands them out with each interaction: views.open accepts one only if it
// was issued, and only within 3 seconds.

import { randomBytes } from 'node:crypto';

export const TRIGGER_LIFETIME_MS = 3000;

export type TriggerCheck = 'valid' | 'invalid_trigger_id' | 'expired_trigger_id';

export class TriggerRegistry {
  readonly #issuedAt = new Map<string, number>();
  #next = 1;

  issue(nowMs: number): string {
    const id = `${this.#next}.${Math.floor(nowMs / 1000)}.${randomBytes(16).toString('hex')}`;
    this.#next += 1;
    this.#issuedAt.set(id, nowMs);
    return id;
  }

  check(id: string, nowMs: number): TriggerCheck {
    const issuedAt = this.#issuedAt.get(id);
    if (issuedAt === undefined) return 'invalid_trigger_id';
    return nowMs - issuedAt > TRIGGER_LIFETIME_MS ? 'expired_trigger_id' : 'valid';
  }
}
