import type { Store } from '../../src/store/store-port.js';

/**
 * The real store behind a port that fails on chosen calls, as a full disk or an I/O error
 * would: `failWhen` sees every call (method name and how many writes came before) and says
 * whether it throws instead of reaching the store. Transactions still run in the real store,
 * so a failure inside one rolls back everything it did.
 */

/** The store methods that write (everything else only reads, or is lifecycle). */
export const WRITE_METHODS: ReadonlySet<string> = new Set([
  'openOrReuseIncident',
  'resolveIncident',
  'acknowledgeIncident',
  'saveReport',
  'setIncidentRootRef',
  'appendTimeline',
  'markSeen',
  'pruneSeen',
  'createMessage',
  'insertOutbox',
  'replacePayload',
  'recordAttempt',
  'markPosted',
  'markSent',
  'deferOutbox',
  'markFailed',
  'pruneSentOutbox',
  'appendAudit',
  'insertApproval',
  'compareAndSetApproval',
  'setApprovalCardRef',
  'recordAlert',
  'touchAlert',
  'setSummaryRef',
  'requestAlertFollowUp',
  'completeAlertFollowUp',
  'setVipHolder',
  'setWatchedVipHolder',
  'claimAlertFollowUp',
  'releaseAlertFollowUp',
]);

export interface StoreCall {
  readonly method: string;
  readonly args: readonly unknown[];
  /** Writes before this one (this one counts when it is a write). */
  readonly writes: number;
  readonly write: boolean;
}

export class InjectedStoreFault extends Error {
  constructor(method: string) {
    super(`injected store failure in ${method}: disk I/O error`);
  }
}

export interface FaultyStore {
  readonly store: Store;
  /** Calls refused so far. */
  readonly failures: StoreCall[];
  /** Writes seen so far (refused ones included). */
  writes(): number;
  setFailWhen(failWhen: (call: StoreCall) => boolean): void;
}

export function faultyStore(inner: Store, failWhen: (call: StoreCall) => boolean = () => false): FaultyStore {
  let decide = failWhen;
  let writes = 0;
  const failures: StoreCall[] = [];
  const store = new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      if (property === 'atomically' || property === 'close') return value.bind(target);
      return (...args: unknown[]) => {
        const write = WRITE_METHODS.has(property);
        if (write) writes += 1;
        const call = { method: property, args, writes, write };
        if (decide(call)) {
          failures.push(call);
          return Promise.reject(new InjectedStoreFault(property));
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return {
    store,
    failures,
    writes: () => writes,
    setFailWhen: (next) => {
      decide = next;
    },
  };
}
