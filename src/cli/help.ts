import { checkIds } from '../domain/check-result.js';
import { incidentNumbers } from '../domain/runbook.js';

/** The commands okome knows, with the text `okome help COMMAND` (or `COMMAND --help`) prints. */
export const COMMAND_HELP = {
  serve: `Usage: okome serve [--config FILE]

The bot: Socket Mode when SLACK_APP_TOKEN is set, HTTP mode (on http.port) with
SLACK_SIGNING_SECRET. Needs SLACK_BOT_TOKEN. Stops gracefully on SIGTERM or SIGINT.

Exit codes: 0 stopped on a signal, 2 configuration or environment error,
4 Slack could not be reached at start-up (the URL is named; check the network or SLACK_API_URL).
`,
  status: `Usage: okome status [--json] [--config FILE]

Runs every runbook check in parallel under one deadline and classifies incidents.

Exit codes: 0 healthy, 1 incident or failing check, 2 configuration error,
3 nothing could be diagnosed (no Pi, VIP or orchestrator answered).
`,
  validate: `Usage: okome validate [--json] [--config FILE]

The runbook's validation script: SSH, nginx/redis/keepalived, memory, disk, network, cache
headers, VIP. Exit codes as for okome status.
`,
  check: `Usage: okome check TARGET [--json] [--config FILE]

Runs one slice of the checks. TARGET is one of:
  a check id:        ${checkIds.join(', ')}
  a node:            a name under nodes: in the configuration (e.g. pi-a)
  an incident:       ${incidentNumbers.join(', ')} (that incident's checks)

Exit codes as for okome status.
`,
  sudoers: `Usage: okome sudoers [--node NAME] [--config FILE]

Prints the sudoers drop-in allowing exactly the catalogue's commands (for one node with --node).
Install it with visudo -cf, as /etc/sudoers.d/okome-bot (0440).
`,
  audit: `Usage: okome audit [--since 12h] [--json] [--config FILE]

Every click, decision and execution since the given time (s, m, h, d). Opens the store
read-only, so it works while the bot serves.
`,
  drills: `Usage: okome drills [--json] [--config FILE]

The drill history, newest first: each drill's kind and the runbook incident it rehearses
(failover: 4, redis: 2), its outcome, node and figures (time to the new VIP holder and the
failed requests against the runbook's about 2 s; time to detection and to verified recovery).
Opens the store read-only, so it works while the bot serves.
`,
  report: `Usage: okome report INCIDENT [--out FILE] [--config FILE]

The post-incident report of an incident, open or resolved, as Markdown: the timeline (alerts,
notices, diagnoses, acknowledgement, approvals, the exact commands and their output,
verification), time to acknowledge and to resolve, and the before/after table of the checks
that diagnosed it. INCIDENT is a key (2:pi-b) or a runbook number (the newest incident with
it). On stdout, or written to FILE with --out. Opens the store read-only, so it works while
the bot serves. Exit 0, or 2 when no incident matches.
`,
  coverage: `Usage: okome coverage [--json] [--config FILE]

For each of the runbook's incidents (1-7, 5b): the checks that detect it, the shipped alert
rules (contrib/prometheus/okome.rules.yml) labelled with it, its catalogue action(s), and what
the store remembers: when it was last seen, last fixed (an approval that succeeded), last
verified (a fix's verification passed, or a status found it healed) and last drilled; "never"
where nothing was. A VIP failover counts for the incident its explained cause belongs to, never
as incident 4 by its stored number. --json for scripts (times as ISO strings, never as null).
Opens the store read-only, so it works while the bot serves. Exit 0.
`,
  config: `Usage: okome config check [--static] [FILE] [--config FILE]
       okome config schema

config check validates a configuration (FILE, --config or OKOME_CONFIG): every problem at once
with its key, the value seen and the fix; warnings apart. Exit 0 valid, 2 invalid.
  --static   the file alone (the shipped example passes)
  (default)  also this host: no placeholder left from the example, each SSH private key there,
             readable and private (chmod 600), the environment variables the mode needs
             (SLACK_BOT_TOKEN with SLACK_APP_TOKEN or SLACK_SIGNING_SECRET, Alertmanager
             credentials, nodes' hookSecretEnv)
config schema prints the configuration's JSON Schema (for editors: yaml-language-server).
`,
  hostkeys: `Usage: okome hostkeys [--node NAME] [--config FILE]

Connects to each node's sshd (within timeouts.sshConnectMs), completes the key exchange without
authenticating, and prints the host key it proved (ED25519 256 SHA256:…, as ssh-keygen -lf shows
it) next to the pinned nodes[].ssh.hostKey: match, MISMATCH, or not pinned with the hostKey: line
to write. It never edits the configuration: compare the fingerprint with ssh-keygen -lf on the
node's own console, then write the pin yourself.

Exit codes: 0 every key matches its pin, 1 a node not pinned or unreachable, 2 configuration
error, 5 a host key differs from its pin: the node was reinstalled or the connection is
intercepted (MITM); check on the node's console before changing the pin by hand.
`,
  doctor: `Usage: okome doctor [--config FILE]

What to run when something is off. Every check in parallel, each within its timeout (a few
seconds in all, even with every node unreachable); one line each: ✓ passed, ✗ failed with what
to try, – not tried because the check before it failed.
  config        the full okome config check (placeholders, SSH private keys)
  environment   the variables the configuration needs (Alertmanager API, hook secrets, store)
  slack         tokens present and well-formed, the mode (Socket Mode or HTTP); auth.test only
                when SLACK_API_URL points at this machine: doctor sends nothing off the LAN
  per node      tcp (the SSH port accepts) → host key (proven, against the pin) → ssh login
                (the bot's key) → sudo (sudo -n -l for every catalogue command, then one
                read-only command run with sudo -n)
  store         opens read-only at this okome's schema version (or can be created)
  http          the bot answers /healthz on http.port, or the port is free for it
Progress goes to stderr when it is a terminal.

Exit codes: 0 every check passed, 1 some did not, 2 the configuration cannot be read.
`,
  healthcheck: `Usage: okome healthcheck [--config FILE]

GET /healthz of the bot the configuration describes (http.port; http.host, a wildcard meaning
loopback), as Docker's HEALTHCHECK runs it. Exit 0 healthy, 1 unreachable or unhealthy.
`,
  store: `Usage: okome store migrate --to postgres [--from FILE] [--config FILE]

Copies the SQLite store (FILE, else the configuration's store.path) into the empty PostgreSQL
database OKOME_DATABASE_URL names (the password in PGPASSWORD), at the same schema version, in
one transaction: every incident, approval, audit entry and undelivered message. Stop the bot
first: both stores' serve locks are held while it copies. A database that already holds rows
is refused. The SQLite file is left unchanged. Then set store.kind: postgres and start the bot.
Exit 0 copied, 2 refused (the reason and the fix are printed).
`,
  help: `Usage: okome help [COMMAND]

Prints the usage, or one command's help.
`,
} as const satisfies Record<string, string>;

export type CommandName = keyof typeof COMMAND_HELP;

export const COMMAND_NAMES = Object.keys(COMMAND_HELP) as CommandName[];

export function isCommandName(name: string): name is CommandName {
  return Object.hasOwn(COMMAND_HELP, name);
}

/** Subcommands of commands that have them. */
export const SUBCOMMANDS: Partial<Record<CommandName, readonly string[]>> = {
  config: ['check', 'schema'],
  store: ['migrate'],
};
