/**
 * The batch protocol: one POSIX sh script runs a node's read-only commands concurrently and a
 * small perl framer streams one frame per command back as it ends. Pure: builds the script text and parses the
 * frames; batching-shell.ts does the I/O.
 *
 * A frame is a header line `DELIM ID EXIT OUTLEN ERRLEN\n` then exactly OUTLEN bytes of stdout
 * and ERRLEN bytes of stderr; the script ends with `DELIM end\n`. The parser skips output by its
 * length, never by searching for text, and DELIM is random per batch: no output can forge a frame.
 */

export interface BatchCommand {
  /** The configured command string, run exactly as a one-command exec would run it. */
  readonly command: string;
  /** The node kills it after this (`timeout`), exit 124. */
  readonly timeoutMs: number;
}

export interface BatchFrame {
  readonly id: number;
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly truncated: boolean;
}

/** `timeout`'s exit status when it killed the command. */
export const TIMEOUT_EXIT = 124;

// A word the shell passes through unchanged: a command of such words runs without a shell, so
// `sudo iptables-save` gives sudo exactly the argv (and sudoers entry) it has today, and a plain
// `df -P /` costs the node no shell. Anything else runs in the login shell, as one exec would
// run it; so do shell builtins and keywords, which have no program of their own.
const PLAIN_WORD = /^[A-Za-z0-9_@+=:,./-]+$/;
const SHELL_ONLY = new Set(
  '. : [[ ! { } alias bg break case cd command continue do done elif else esac eval exec exit export fg fi for getopts hash if jobs local read readonly return set shift then times trap type ulimit umask unalias unset until wait while'.split(
    ' ',
  ),
);

/** Single-quotes a string for sh; `'` becomes `'\''`. */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The words a command runs as inside the batch (its group's `timeout` is outside: never `sudo timeout`). */
export function commandWords(command: string): string {
  const words = command.trim().split(/\s+/);
  return words.every((w) => PLAIN_WORD.test(w)) && !SHELL_ONLY.has(words[0] ?? '')
    ? words.join(' ')
    : `"\${SHELL:-sh}" -c ${shellQuote(command)}`;
}

/** `timeout`'s argument for a command's budget, to a tenth of a second. */
export function timeoutSeconds(timeoutMs: number): string {
  return (Math.max(100, timeoutMs) / 1000).toFixed(1);
}

/**
 * The framer. Started with the commands, it sends a finished command's frame without any
 * process being started after the command ends (on a loaded node, such starts were what made
 * a batched status slower than one exec per check). On a post
 * `ID EXIT` it sends that job's frame; on `t 124 IDS…` (a group killed at its deadline) it
 * reports the group's unsent jobs as exit 124; a group that ended otherwise leaves its unsent
 * jobs unreported (the bot says the batch broke off). perl-base is Essential on Debian.
 * Written without `'`: it goes inside single quotes.
 */
const FRAMER = [
  '$| = 1; binmode STDOUT; my ($D) = @ARGV; my %sent;',
  'sub slurp { open(my $f, "<:raw", $_[0]) or return ""; local $/; my $c = <$f>; defined $c ? $c : "" }',
  'while (my $l = <STDIN>) {',
  '  my ($i, $x, @ids) = split " ", $l;',
  '  next unless defined $x;',
  '  if ($i eq "t") { if ($x eq "124") { $sent{$_}++ or print "$D $_ 124 0 0\\n" for @ids } next }',
  '  next if $sent{$i}++;',
  '  my ($o, $e) = (slurp("$i.o"), slurp("$i.e"));',
  '  print "$D $i $x ", length($o), " ", length($e), "\\n", $o, $e;',
  '}',
  'print "$D end\\n";',
].join('\n');

/**
 * The script. Captures go to a private directory in /dev/shm (RAM: nothing touches the SD card),
 * TMPDIR when there is none, removed by the EXIT trap (TERM/HUP/INT exit so the trap runs).
 *
 * Processes are the cost on a Pi (a status asks a node a dozen commands), and on a loaded node
 * so is any process started after a command ends, before its result can leave. So: per command
 * a job subshell (a fork) and the command itself (no `sh -c` for plain words); per group of
 * commands with the same budget one `timeout` and one `sh`, whose jobs they are: at the
 * deadline `timeout` kills the group's whole process group and the framer reports the
 * unfinished as exit 124; per batch one `mktemp`, one `perl` (the framer) and one `rm`. One
 * exec per check costs each command a session process and a login shell instead. Each capture
 * is bounded by `ulimit -f` at two times the cap, so a runaway command cannot fill the node's
 * RAM; past that it is killed (SIGXFSZ) and reported truncated. A finished job posts
 * `ID EXIT` on a pipe to the framer, which sends its frame at once: frames never interleave and
 * each leaves as soon as its command ends.
 */
export function buildBatchScript(
  commands: readonly BatchCommand[],
  delimiter: string,
  maxOutputBytes: number,
): string {
  if (!/^[A-Za-z0-9]+$/.test(delimiter)) throw new Error('batch delimiter must be alphanumeric');
  const groups = new Map<string, number[]>();
  commands.forEach((c, i) => {
    const seconds = timeoutSeconds(c.timeoutMs);
    const ids = groups.get(seconds) ?? [];
    ids.push(i);
    groups.set(seconds, ids);
  });
  const runners = [...groups].flatMap(([seconds, ids]) => [
    // The here-document is the group's script, read by its sh; its end line is the random
    // delimiter, which no configured command contains.
    `{ timeout ${seconds} sh -s "$F" <<'${delimiter}'`,
    'ulimit -f "$1"',
    `j() { i=$1; shift; "$@" </dev/null >"$i.o" 2>"$i.e"; echo "$i $?"; }`,
    ...ids.map((i) => `j ${i} ${commandWords(commands[i]?.command ?? 'true')} &`),
    'wait',
    delimiter,
    `echo "t $? ${ids.join(' ')}"; } &`,
  ]);
  return [
    `D=${delimiter}`,
    `F=${Math.ceil((2 * maxOutputBytes) / 512) + 1}`,
    `d=$(mktemp -d "/dev/shm/okome-batch.$$.XXXXXX" 2>/dev/null) || d=$(mktemp -d "\${TMPDIR:-/tmp}/okome-batch.$$.XXXXXX") || exit 70`,
    `trap 'rm -rf "$d"' EXIT`,
    "trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM",
    'cd "$d" || exit 71',
    // Jobs and groups post on the pipe to the framer; it ends when they all have.
    '{',
    ...runners,
    // A batch killed outright (SIGKILL when the bot gives up on it) leaves its directory: this
    // one removes those of ours whose shell ($$ in the name) is gone, while its commands run.
    `for s in /dev/shm/okome-batch.* "\${TMPDIR:-/tmp}"/okome-batch.*; do`,
    `  p=\${s##*/okome-batch.}; p=\${p%%.*}`,
    '  [ -O "$s" ] && ! kill -0 "$p" 2>/dev/null && rm -rf "$s"',
    'done',
    'wait',
    `} | perl -e ${shellQuote(FRAMER)} "$D"`,
    '',
  ].join('\n');
}

/**
 * Incremental frame parser: feed stdout chunks as they arrive, get frames as soon as they are
 * whole. Applies today's per-command cap: stdout first, then stderr in the room left.
 */
export class BatchFrameParser {
  private buffer: Buffer = Buffer.alloc(0);
  private ended = false;
  private broken: string | undefined;

  constructor(
    private readonly delimiter: string,
    private readonly maxOutputBytes: number,
  ) {}

  /** True once the end marker was read: every command reported. */
  get complete(): boolean {
    return this.ended;
  }

  /** Why the stream stopped making sense (text that is not a frame), if it did. */
  get error(): string | undefined {
    return this.broken;
  }

  push(chunk: Buffer): BatchFrame[] {
    if (this.ended || this.broken !== undefined) return [];
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const frames: BatchFrame[] = [];
    for (;;) {
      const eol = this.buffer.indexOf(0x0a);
      if (eol < 0) {
        // A header is short: a long run without a newline is not one.
        if (this.buffer.length > 256) this.fail('a header line longer than 256 bytes');
        return frames;
      }
      const header = this.buffer.subarray(0, eol).toString('latin1').trim().split(/ +/);
      if (header[0] !== this.delimiter) {
        this.fail(`expected a frame header, got ${JSON.stringify(header.join(' ').slice(0, 80))}`);
        return frames;
      }
      if (header.length === 2 && header[1] === 'end') {
        this.ended = true;
        this.buffer = Buffer.alloc(0);
        return frames;
      }
      const [, idText, exitText, outText, errText] = header;
      const id = Number(idText);
      const outLen = Number(outText);
      const errLen = Number(errText);
      if (header.length !== 5 || ![id, outLen, errLen].every((n) => Number.isSafeInteger(n) && n >= 0)) {
        this.fail(`malformed frame header ${JSON.stringify(header.join(' ').slice(0, 80))}`);
        return frames;
      }
      const start = eol + 1;
      if (this.buffer.length < start + outLen + errLen) return frames;
      const out = this.buffer.subarray(start, start + outLen);
      const err = this.buffer.subarray(start + outLen, start + outLen + errLen);
      this.buffer = this.buffer.subarray(start + outLen + errLen);
      const exitCode = /^\d+$/.test(exitText ?? '') ? Number(exitText) : null;
      frames.push({ id, exitCode, ...this.capped(out, err) });
    }
  }

  private capped(out: Buffer, err: Buffer): Pick<BatchFrame, 'stdout' | 'stderr' | 'truncated'> {
    const cap = this.maxOutputBytes;
    const keptOut = out.subarray(0, cap);
    const keptErr = err.subarray(0, Math.max(0, cap - keptOut.length));
    return {
      stdout: keptOut.toString('utf8'),
      stderr: keptErr.toString('utf8'),
      truncated: keptOut.length < out.length || keptErr.length < err.length,
    };
  }

  private fail(reason: string): void {
    this.broken = reason;
    this.buffer = Buffer.alloc(0);
  }
}
