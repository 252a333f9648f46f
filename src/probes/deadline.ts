import { ErrorCode, OkomeError } from '../errors.js';

/**
 * The error for a call cut short by the caller's AbortSignal: an OkomeError given as the
 * reason is kept, `AbortSignal.timeout()` counts as a timeout, anything else is OKOME_ABORTED.
 */
export function abortError(
  signal: AbortSignal | undefined,
  context: string,
  timeoutCode: ErrorCode = ErrorCode.SshExecTimeout,
): OkomeError {
  const reason: unknown = signal?.reason;
  if (reason instanceof OkomeError) return reason;
  if (reason instanceof Error && reason.name === 'TimeoutError') {
    return new OkomeError(timeoutCode, `${context}: timed out (caller's deadline)`, {
      userSafe: true,
      cause: reason,
    });
  }
  return new OkomeError(ErrorCode.Aborted, `${context}: cancelled`, { userSafe: true, cause: reason });
}

const REASONS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed',
  EHOSTUNREACH: 'host unreachable',
  EHOSTDOWN: 'host down',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connect timed out',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
  EADDRNOTAVAIL: 'address not available',
};

/** A short human reason for a socket-level error ("connection refused", "host unreachable"…). */
export function describeNetworkError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== undefined && REASONS[code] !== undefined) return REASONS[code];
  if (/Timed out while waiting for handshake/.test(error.message)) return 'handshake timed out';
  if (/All configured authentication methods failed/.test(error.message))
    return 'authentication failed (key not accepted)';
  return error.message;
}

const RESETS = new Set(['ECONNREFUSED', 'ECONNRESET']);

/**
 * The peer answered with a reset (connection refused or reset): the host is up, the daemon
 * is not. Looks through `cause` chains and AggregateErrors (undici nests the socket error).
 */
export function refusedByPeer(error: unknown, depth = 0): boolean {
  if (!(error instanceof Error) || depth > 5) return false;
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== undefined && RESETS.has(code)) return true;
  if (error instanceof AggregateError && error.errors.some((e) => refusedByPeer(e, depth + 1))) return true;
  return refusedByPeer(error.cause, depth + 1);
}
