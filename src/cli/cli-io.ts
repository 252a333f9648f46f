/** What a CLI command may touch: passed in so tests run commands in-process. */
export interface CliIo {
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: { write(text: string): unknown; isTTY?: boolean };
  readonly stderr: { write(text: string): unknown; isTTY?: boolean };
  readonly cwd: string;
}

/** Exit codes shared by every command (`okome status` documents them in README). */
export const ExitCode = {
  Ok: 0,
  Incident: 1,
  ConfigError: 2,
  Undiagnosable: 3,
  /** `okome serve` could not reach Slack at start-up (network, DNS, proxy, SLACK_API_URL). */
  SlackUnreachable: 4,
  /** `okome hostkeys`: a node proved a host key other than its pin (reinstalled, or intercepted). */
  HostKeyMismatch: 5,
} as const;
