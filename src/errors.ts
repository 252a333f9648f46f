/**
 * The one error catalogue. Every error okome-bot raises on purpose carries a stable `code`
 * that tests assert and operators can search for. `userSafe` errors may be shown in Slack
 * as they are; any other error is reported there as "internal error, see the logs".
 */
export const ErrorCode = {
  ConfigNotFound: 'OKOME_CONFIG_NOT_FOUND',
  ConfigUnreadable: 'OKOME_CONFIG_UNREADABLE',
  ConfigInvalid: 'OKOME_CONFIG_INVALID',
  EnvInvalid: 'OKOME_ENV_INVALID',
  UsageInvalid: 'OKOME_USAGE_INVALID',
  SshHostKeyMismatch: 'OKOME_SSH_HOST_KEY_MISMATCH',
  SshConnectFailed: 'OKOME_SSH_CONNECT_FAILED',
  SshExecTimeout: 'OKOME_SSH_EXEC_TIMEOUT',
  SshOutputTooLarge: 'OKOME_SSH_OUTPUT_TOO_LARGE',
  ProbeTimeout: 'OKOME_PROBE_TIMEOUT',
  ProbeFailed: 'OKOME_PROBE_FAILED',
  StoreFailed: 'OKOME_STORE_FAILED',
  Internal: 'OKOME_INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class OkomeError extends Error {
  readonly code: ErrorCode;
  readonly userSafe: boolean;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; userSafe?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OkomeError';
    this.code = code;
    this.userSafe = options.userSafe ?? false;
  }
}

/** Wraps anything thrown into an OkomeError, keeping one that already is. */
export function asOkomeError(error: unknown, code: ErrorCode = ErrorCode.Internal): OkomeError {
  if (error instanceof OkomeError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new OkomeError(code, message, { cause: error });
}

export function isOkomeError(error: unknown, code?: ErrorCode): error is OkomeError {
  return error instanceof OkomeError && (code === undefined || error.code === code);
}
