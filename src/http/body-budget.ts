/**
 * The bytes of request bodies held in memory at once, across every connection of a server.
 * A body is admitted only while the total stays under the cap, so many concurrent uploads, each
 * within its route's limit, cannot add up to an out-of-memory.
 */
export class BodyBudget {
  private used = 0;

  constructor(readonly capBytes: number) {}

  get inFlightBytes(): number {
    return this.used;
  }

  /** Takes `bytes` from the budget; false (and nothing taken) when they do not fit. */
  tryTake(bytes: number): boolean {
    if (bytes < 0 || this.used + bytes > this.capBytes) return false;
    this.used += bytes;
    return true;
  }

  giveBack(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }
}
