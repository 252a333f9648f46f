import { describe, expect, it } from 'vitest';
import {
  type BatchFrame,
  BatchFrameParser,
  buildBatchScript,
  commandWords,
  timeoutSeconds,
} from '../../src/diagnostics/batch-protocol.js';

const D = 'okome0123456789abcdef';

/** A frame as the script prints it: header, then the raw stdout and stderr bytes. */
function frame(
  id: number,
  exit: number | string,
  stdout: string | Buffer,
  stderr: string | Buffer = '',
): Buffer {
  const out = Buffer.from(stdout);
  const err = Buffer.from(stderr);
  return Buffer.concat([Buffer.from(`${D} ${id} ${exit} ${out.length} ${err.length}\n`), out, err]);
}
const end = Buffer.from(`${D} end\n`);

function parseAll(
  stream: Buffer,
  cap = 1024,
  chunkSize = stream.length,
): { frames: BatchFrame[]; parser: BatchFrameParser } {
  const parser = new BatchFrameParser(D, cap);
  const frames: BatchFrame[] = [];
  for (let i = 0; i < stream.length; i += chunkSize)
    frames.push(...parser.push(stream.subarray(i, i + chunkSize)));
  return { frames, parser };
}

describe('batch frame parser', () => {
  it('gives each command exactly its stdout, stderr and exit code (0/1/3/124/255)', () => {
    const stream = Buffer.concat([
      frame(2, 0, 'active\n'),
      frame(0, 1, 'inactive\n'),
      frame(1, 3, '', 'Unit x.service could not be found.\n'),
      frame(3, 124, ''),
      frame(4, 255, 'partial', 'boom'),
      end,
    ]);
    const { frames, parser } = parseAll(stream);
    expect(frames.map((f) => [f.id, f.exitCode, f.stdout, f.stderr, f.truncated])).toEqual([
      [2, 0, 'active\n', '', false],
      [0, 1, 'inactive\n', '', false],
      [1, 3, '', 'Unit x.service could not be found.\n', false],
      [3, 124, '', '', false],
      [4, 255, 'partial', 'boom', false],
    ]);
    expect(parser.complete).toBe(true);
    expect(parser.error).toBeUndefined();
  });

  it('keeps output without a trailing newline as it is', () => {
    const { frames } = parseAll(Buffer.concat([frame(0, 0, 'absent'), frame(1, 0, 'x', 'warn'), end]));
    expect(frames.map((f) => [f.stdout, f.stderr])).toEqual([
      ['absent', ''],
      ['x', 'warn'],
    ]);
  });

  it('output that prints the delimiter, even a whole fake frame or end marker, stays output', () => {
    const forged = `${D} 1 0 3 0\nabc${D} end\n`;
    const stream = Buffer.concat([frame(0, 0, forged, `${D} 9 0 0 0\n`), frame(1, 0, 'real'), end]);
    // Byte by byte as well as at once: the frames do not depend on how chunks fall.
    for (const chunk of [stream.length, 1, 7]) {
      const { frames, parser } = parseAll(stream, 1024, chunk);
      expect(frames.map((f) => [f.id, f.stdout, f.stderr])).toEqual([
        [0, forged, `${D} 9 0 0 0\n`],
        [1, 'real', ''],
      ]);
      expect(parser.complete).toBe(true);
    }
  });

  it('truncates output over maxOutputBytes per command as one exec does: stdout first, then stderr', () => {
    const cap = 1024;
    const big = 'x'.repeat(cap + 1);
    const { frames } = parseAll(
      Buffer.concat([
        frame(0, 0, big, 'err'),
        frame(1, 0, 'y'.repeat(1000), 'z'.repeat(100)),
        frame(2, 0, 'ok'),
        end,
      ]),
      cap,
    );
    expect(frames.map((f) => [f.stdout.length, f.stderr.length, f.truncated])).toEqual([
      [cap, 0, true],
      [1000, 24, true],
      [2, 0, false],
    ]);
  });

  it('splits no UTF-8 character at a chunk boundary', () => {
    const { frames } = parseAll(Buffer.concat([frame(0, 0, 'é → ✓\n'), end]), 1024, 1);
    expect(frames[0]?.stdout).toBe('é → ✓\n');
  });

  it('a batch cut mid-frame delivers the whole frames and is not complete', () => {
    const whole = frame(0, 0, 'done\n');
    const cut = frame(1, 0, 'half of it\n').subarray(0, 30);
    const { frames, parser } = parseAll(Buffer.concat([whole, cut]));
    expect(frames.map((f) => f.id)).toEqual([0]);
    expect(parser.complete).toBe(false);
    expect(parser.error).toBeUndefined();
  });

  it('text that is not a frame stops the parse with the reason', () => {
    const { frames, parser } = parseAll(
      Buffer.concat([Buffer.from('Welcome to pi-a\n'), frame(0, 0, 'x'), end]),
    );
    expect(frames).toEqual([]);
    expect(parser.complete).toBe(false);
    expect(parser.error).toMatch(/expected a frame header, got "Welcome to pi-a"/);
    expect(parseAll(Buffer.from(`${D} 0 0 -1 2\n`)).parser.error).toMatch(/malformed frame header/);
    expect(parseAll(Buffer.from('z'.repeat(300))).parser.error).toMatch(/longer than 256 bytes/);
  });

  it('an exit status that is not a number (the job left none) is null', () => {
    const { frames } = parseAll(Buffer.concat([frame(0, '-', ''), end]));
    expect(frames[0]?.exitCode).toBeNull();
  });
});

describe('batch script', () => {
  it("runs sudo commands with the exact argv of one exec, under their group's `timeout`, never `sudo timeout`", () => {
    expect(commandWords('sudo iptables-save')).toBe('sudo iptables-save');
    expect(commandWords('sudo nginx -T')).toBe('sudo nginx -T');
    expect(timeoutSeconds(3700)).toBe('3.7');
    const script = buildBatchScript([{ command: 'sudo iptables-save', timeoutMs: 3700 }], D, 4096);
    expect(script).toContain(`{ timeout 3.7 sh -s "$F" <<'${D}'\n`);
    expect(script).toContain('\nj 0 sudo iptables-save &\n');
    expect(script).not.toMatch(/sudo\s+timeout/);
  });

  it('runs a command of plain words as its own program, with no shell in between', () => {
    expect(commandWords('df -P /')).toBe('df -P /');
    expect(commandWords('  systemctl   is-active nginx ')).toBe('systemctl is-active nginx');
  });

  it('runs every other command in the login shell (as one exec does), single-quoted', () => {
    expect(commandWords("test -e /x && echo 'a b' || echo absent")).toBe(
      `"\${SHELL:-sh}" -c 'test -e /x && echo '\\''a b'\\'' || echo absent'`,
    );
    // Builtins and keywords have no program of their own: the shell runs them.
    expect(commandWords('exit 3')).toBe(`"\${SHELL:-sh}" -c 'exit 3'`);
    expect(commandWords('cd /tmp')).toBe(`"\${SHELL:-sh}" -c 'cd /tmp'`);
    // sudo with shell syntax: the shell gives sudo the same argv as one exec would.
    expect(commandWords('sudo journalctl --since "10 min ago"')).toMatch(/^"\$\{SHELL:-sh\}" -c 'sudo/);
  });

  it('captures in /dev/shm (TMPDIR as the fallback), removed by a trap, one job per command, one timeout per budget', () => {
    const script = buildBatchScript(
      [
        { command: 'df -P /', timeoutMs: 1000 },
        { command: 'sudo iptables-save', timeoutMs: 3700 },
        { command: 'cat /proc/meminfo', timeoutMs: 1000 },
      ],
      D,
      4096,
    );
    expect(script).toContain('mktemp -d "/dev/shm/okome-batch.$$.XXXXXX"');
    expect(script).toContain(`mktemp -d "\${TMPDIR:-/tmp}/okome-batch.$$.XXXXXX"`);
    expect(script).toContain(`trap 'rm -rf "$d"' EXIT`);
    expect(script).toContain(`D=${D}\nF=17\n`);
    expect(script).toContain('ulimit -f "$1"');
    expect(script).toContain(`{ timeout 1.0 sh -s "$F" <<'${D}'\nulimit -f "$1"\nj() {`);
    expect(script).toContain('\nj 0 df -P / &\nj 2 cat /proc/meminfo &\nwait\n');
    expect(script).toContain(`\n${D}\necho "t $? 0 2"; } &\n`);
    expect(script.match(/\btimeout \d/g)).toHaveLength(2);
    expect(script).not.toMatch(/sudo\s+timeout/);
    expect(() => buildBatchScript([], 'a b', 10)).toThrow(/alphanumeric/);
  });
});
