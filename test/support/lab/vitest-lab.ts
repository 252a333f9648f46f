import { describe, it } from 'vitest';
import { labAvailability } from './availability.js';

const availability = labAvailability();

/**
 * describe() for lab tests. Where the lab cannot run (not root, a tool missing, no namespaces)
 * the suite is skipped and says why on the console; with OKOME_REQUIRE_LAB=1 (CI) the same
 * reason is a failing test instead, so CI never passes without having run the lab.
 */
export function describeLab(name: string, body: () => void): void {
  if (!availability.ok) {
    const message = `lab suite "${name}" did not run: ${availability.reason}`;
    if (process.env.OKOME_REQUIRE_LAB === '1') {
      describe(name, () => {
        it('runs because OKOME_REQUIRE_LAB=1 requires the lab', () => {
          throw new Error(message);
        });
      });
      return;
    }
    console.warn(`${message} (set OKOME_REQUIRE_LAB=1 to make this a failure)`);
  }
  describe.skipIf(!availability.ok)(name, body);
}
