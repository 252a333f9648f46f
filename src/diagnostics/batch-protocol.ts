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

// A word the shell passes through unchanged: a sudo command of such words runs without a
// shell, so `timeout N sudo iptables-save` gives sudo exactly the argv (and sudoers entry) it
// has today. Anything else runs in the login shell, as one exec would run it (builtins too).
const PLAIN_WORD = /^[A-Za-z0-9_@+=:,./-]+$/;

/** Single-quotes a string for sh; `'` becomes `'\''`. */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The argv a command runs with inside the batch, under its own `timeout` (never `sudo timeout`). */
export function commandWords(command: string, timeoutMs: number): string {
  const seconds = (Math.max(100, timeoutMs) / 1000).toFixed(1);
  const words = command.trim().split(/\s+/);
  const body =
    words[0] === 'sudo' && words.every((w) => PLAIN_WORD.test(w))
      ? words.join(' ')
      : `"\${SHELL:-sh}" -c ${shellQuote(command)}`;
  return `timeout ${seconds} ${body}`;
}

/**
 * The script. Captures go to a private directory in /dev/shm (RAM: nothing touches the SD card),
 * TMPDIR when there is none, removed by the EXIT trap (TERM/HUP/INT exit so the trap runs).
 * Few processes, since they are the cost on a Pi: per command a job subshell, `timeout` and the
 * command (a shell execs into it); per frame one `wc` and one `cat`. Each capture file is bounded by `ulimit -f` at two
 * (bash: four) times the cap, so a runaway command cannot fill the node's RAM; past that it is
 * killed (SIGXFSZ) and reported truncated. Finished jobs post `id exit` on a FIFO; the main loop
 * prints their frames one at a time, so frames never interleave and each leaves as soon as its
 * command ends.
 */
export function buildBatchScript(
  commands: readonly BatchCommand[],
  delimiter: string,
  maxOutputBytes: number,
): string {
  if (!/^[A-Za-z0-9]+$/.test(delimiter)) throw new Error('batch delimiter must be alphanumeric');
  const jobs = commands.map((c, i) => `j ${i} ${commandWords(c.command, c.timeoutMs)} &`);
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
    'j() {',
    '  i=$1; shift; ulimit -f "$F"',
    '  "$@" </dev/null >"$i.o" 2>"$i.e" 3>&-',
    '  echo "$i $?" >&3',
    '}',
    ...jobs,
    'n=0',
    `while [ "$n" -lt ${commands.length} ] && read -r i x <&3; do`,
    // One wc for both sizes: `N i.o M i.e T total`.
    '  set -- $(wc -c "$i.o" "$i.e")',
    `  printf '%s %s %s %s %s\\n' "$D" "$i" "$x" "$1" "$3"`,
    '  cat "$i.o" "$i.e"',
    '  n=$((n+1))',
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
