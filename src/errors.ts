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
  /** A node's batch of read-only commands ended before this command's frame arrived. */
  SshBatchIncomplete: 'OKOME_SSH_BATCH_INCOMPLETE',
  ProbeTimeout: 'OKOME_PROBE_TIMEOUT',
  ProbeFailed: 'OKOME_PROBE_FAILED',
  /** The caller's AbortSignal fired (e.g. a status run's overall deadline). */
  Aborted: 'OKOME_ABORTED',
  StoreFailed: 'OKOME_STORE_FAILED',
  /** Another `okome serve` holds the store: one serving process per store. */
  ServeLockHeld: 'OKOME_SERVE_LOCK_HELD',
  /** A singleton's write refused: this replica's leader term ended (another replica leads now). */
  NotLeader: 'OKOME_NOT_LEADER',
  Internal: 'OKOME_INTERNAL',
  /** The database was written by a newer okome-bot (its schema version is unknown here). */
  StoreSchemaTooNew: 'OKOME_STORE_SCHEMA_TOO_NEW',
  /** A schema migration is due while replicas of the older version still serve the database. */
  StoreUpgradeRefused: 'OKOME_STORE_UPGRADE_REFUSED',
  /** An outbox call named a message ref the store does not know (or one in another channel). */
  OutboxUnknownMessage: 'OKOME_OUTBOX_UNKNOWN_MESSAGE',
  /** Slack asked us to slow down (HTTP 429); the outbox waits Retry-After and tries again. */
  SlackRateLimited: 'OKOME_SLACK_RATE_LIMITED',
  /** Slack or the network failed in a way worth retrying (5xx, reset, timeout). */
  SlackUnavailable: 'OKOME_SLACK_UNAVAILABLE',
  /** Slack refused the call for good (ok:false such as channel_not_found, invalid_blocks). */
  SlackRejected: 'OKOME_SLACK_REJECTED',
  /** A button named an approval the store does not know. */
  ApprovalNotFound: 'OKOME_APPROVAL_NOT_FOUND',
  /** An approval kept changing under a compare-and-set; the click is to be retried. */
  ApprovalConflict: 'OKOME_APPROVAL_CONFLICT',
  /** An action cannot be planned for the proposed nodes (target, service or command problem). */
  PlanRefused: 'OKOME_PLAN_REFUSED',
  /** A sudo command cannot be expressed exactly in sudoers (shell syntax, unknown binary, options). */
  SudoersUnsupportedCommand: 'OKOME_SUDOERS_UNSUPPORTED_COMMAND',
  /** Alertmanager's API did not answer (refused, timeout, 5xx): the silence was not changed. */
  AlertmanagerUnavailable: 'OKOME_ALERTMANAGER_UNAVAILABLE',
  /** Alertmanager's API refused the request (4xx: bad matchers, auth, unknown silence). */
  AlertmanagerRejected: 'OKOME_ALERTMANAGER_REJECTED',
  /** A drill's record changed under a compare-and-set (another replica, a second click). */
  DrillConflict: 'OKOME_DRILL_CONFLICT',
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
