// Faults on demand for Web API methods (and `response_url`): each one answers instead of the
// method for a number of calls, for a span of time, or until cleared.

export type FaultKind =
  | { readonly kind: 'rate_limited'; readonly retryAfterSec: number }
  | { readonly kind: 'http_500' }
  | { readonly kind: 'ok_false'; readonly error: string };

export type FaultSpec = FaultKind & {
  /** A Web API method such as 'chat.postMessage', 'response_url', 'upload' (the upload URL's POST), or '*' (the default) for every one. */
  readonly method?: string;
  /** Answer this many calls, then stop. */
  readonly times?: number;
  /** Answer every call for this long after `fault()`, then stop. */
  readonly forMs?: number;
};

interface ActiveFault {
  readonly kind: FaultKind;
  readonly method: string;
  remaining: number;
  readonly expiresAt: number;
}

export class FaultInjector {
  #faults: ActiveFault[] = [];

  add(spec: FaultSpec, nowMs: number): void {
    if (spec.times !== undefined && (!Number.isInteger(spec.times) || spec.times < 1)) {
      throw new RangeError(`fault times must be a positive integer, got ${spec.times}`);
    }
    if (spec.kind === 'rate_limited' && !(spec.retryAfterSec >= 0)) {
      throw new RangeError(`rate_limited needs retryAfterSec >= 0, got ${spec.retryAfterSec}`);
    }
    this.#faults.push({
      kind: toKind(spec),
      method: spec.method ?? '*',
      remaining: spec.times ?? Number.POSITIVE_INFINITY,
      expiresAt: spec.forMs === undefined ? Number.POSITIVE_INFINITY : nowMs + spec.forMs,
    });
  }

  clear(): void {
    this.#faults = [];
  }

  /** The first live fault matching `method`, consuming one of its uses. */
  take(method: string, nowMs: number): FaultKind | undefined {
    this.#faults = this.#faults.filter((fault) => fault.remaining > 0 && fault.expiresAt > nowMs);
    const fault = this.#faults.find((candidate) => candidate.method === '*' || candidate.method === method);
    if (fault === undefined) return undefined;
    fault.remaining -= 1;
    return fault.kind;
  }
}

function toKind(spec: FaultSpec): FaultKind {
  switch (spec.kind) {
    case 'rate_limited':
      return { kind: 'rate_limited', retryAfterSec: spec.retryAfterSec };
    case 'http_500':
      return { kind: 'http_500' };
    case 'ok_false':
      return { kind: 'ok_false', error: spec.error };
  }
}
