import { describe, it } from 'vitest';
import { type LabAvailability, labAvailability } from './availability.js';

const availability = labAvailability();

/**
 * describe() for lab tests. Where the lab cannot run (not root, a tool missing, no namespaces)
 * the suite is skipped and says why on the console; with OKOME_REQUIRE_LAB=1 (CI) the same
 * reason is a failing test instead, so CI never passes without having run the lab. `also`
 * adds a suite's own requirement (the monitoring lab's Debian packages).
 */
export function describeLab(name: string, body: () => void, also?: () => LabAvailability): void {
  const extra = availability.ok && also !== undefined ? also() : availability;
  if (!extra.ok) {
    const message = `lab suite "${name}" did not run: ${extra.reason}`;
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
  describe.skipIf(!extra.ok)(name, body);
}
