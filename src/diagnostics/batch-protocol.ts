/**
 * The batch protocol: one POSIX sh script runs a node's read-only commands concurrently and
 * streams one frame per command back as it ends. Pure: builds the script text and parses the
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
 * The script. Captures go to a private directory in /dev/shm (RAM: nothing touches the SD card),
 * TMPDIR when there is none, removed by the EXIT trap (TERM/HUP/INT exit so the trap runs).
 *
 * Processes are the cost on a Pi (a status asks a node a dozen commands), so the batch starts
 * as few as it can besides the commands themselves: per command a job subshell (a fork); per
 * group of commands with the same budget one `timeout` and one `sh`; per wake-up of the main
 * loop one `wc` and one `cat` for every frame ready by then. The commands of a group run as
 * jobs of one `sh` under one `timeout`, which at the deadline kills its whole process group;
 * the main loop then reports those not finished as exit 124. Each capture is bounded by
 * `ulimit -f` at two times the cap, so a runaway command cannot fill the node's RAM; past that
 * it is killed (SIGXFSZ) and reported truncated.
 *
 * A finished job leaves a marker whose name carries its exit status (`ID.r.EXIT`, created
 * empty: it appears whole) and posts its id on a FIFO; a group posts `t STATUS IDS…` when its
 * `sh` is gone. The main loop wakes on either, finds every ready job by a glob (no process),
 * sizes their captures with one `wc`, writes their headers and sends them with one `cat`: frames
 * never interleave, each leaves as soon as its command ends, and commands ending together
 * leave together.
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
    `j() { i=$1; shift; "$@" </dev/null >"$i.o" 2>"$i.e" 3>&-; : >"$i.r.$?"; echo "$i" >&3; }`,
    ...ids.map((i) => `j ${i} ${commandWords(commands[i]?.command ?? 'true')} &`),
    'wait',
    delimiter,
    `echo "t $? ${ids.join(' ')}" >&3; } &`,
  ]);
  return [
    `D=${delimiter}`,
    `F=${Math.ceil((2 * maxOutputBytes) / 512) + 1}`,
    // A batch killed outright (SIGKILL when the bot gives up on it) leaves its directory: the
    // next one removes those of ours whose shell ($$ in the name) is gone. Builtins only.
    `for s in /dev/shm/okome-batch.* "\${TMPDIR:-/tmp}"/okome-batch.*; do`,
    `  p=\${s##*/okome-batch.}; p=\${p%%.*}`,
    '  [ -O "$s" ] && ! kill -0 "$p" 2>/dev/null && rm -rf "$s"',
    'done',
    `d=$(mktemp -d "/dev/shm/okome-batch.$$.XXXXXX" 2>/dev/null) || d=$(mktemp -d "\${TMPDIR:-/tmp}/okome-batch.$$.XXXXXX") || exit 70`,
    `trap 'rm -rf "$d"' EXIT`,
    "trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM",
    'cd "$d" && mkfifo q && exec 3<>q || exit 71',
    ...runners,
    `g=${groups.size} sent=' '`,
    'while [ "$g" -gt 0 ] && read -r i s m <&3; do',
    '  [ "$i" = t ] && g=$((g-1))',
    '  set --',
    '  for r in *.r.*; do',
    '    [ -e "$r" ] || continue',
    `    k=\${r%%.*}`,
    '    case $sent in *" $k "*) ;; *) set -- "$@" "$k.o" "$k.e"; sent="$sent$k " ;; esac',
    '  done',
    '  if [ "$#" -gt 0 ]; then',
    // One wc for every ready capture: `N k.o M k.e … T total`.
    '    set -- $(wc -c "$@")',
    '    f=',
    '    while [ "$#" -gt 2 ]; do',
    `      k=\${2%.o}`,
    `      for r in "$k".r.*; do x=\${r##*.}; done`,
    `      printf '%s %s %s %s %s\\n' "$D" "$k" "$x" "$1" "$3" >"$k.h"`,
    '      f="$f $k.h $k.o $k.e"',
    '      shift 4',
    '    done',
    '    cat $f',
    '  fi',
    // A group killed at its deadline: what had not finished timed out. (A group that ended
    // otherwise leaves its unfinished commands unreported: the bot says the batch broke off.)
    '  if [ "$i" = t ] && [ "$s" = 124 ]; then',
    '    for k in $m; do',
    `      case $sent in *" $k "*) ;; *) printf '%s %s 124 0 0\\n' "$D" "$k"; sent="$sent$k " ;; esac`,
    '    done',
    '  fi',
    'done',
    `printf '%s end\\n' "$D"`,
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
