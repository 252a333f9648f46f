import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, realpathSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { type NodePin, parseConfigForPinning, withHostKeys } from '../config/host-key-pins.js';
import { configPath, parseConfig, type ResolvedNode, readConfigText } from '../config/load-config.js';
import { didYouMean } from '../domain/suggest.js';
import { type CliIo, ExitCode } from './cli-io.js';
import {
  describeOffered,
  type HostKeyVerdict,
  hostKeyFile,
  hostKeyVerdict,
  mismatchWarning,
} from './host-key-verdict.js';

/**
 * `okome hostkeys [--node NAME] [--write]`: each node's SSH host key, proven by a key exchange,
 * next to its pin. `--write` pins a key only where none is (trust on first use, said so); a pin
 * that differs is never replaced. Exit 0 every key matches its pin (or was just pinned), 1 a
 * node unpinned or unreachable, 5 a mismatch.
 */
export async function hostkeysCommand(
  options: { config: string | undefined; node: string | undefined; write: boolean },
  io: CliIo,
): Promise<number> {
  const file = resolve(io.cwd, configPath(options.config, io.env));
  const text = readConfigText(file);
  const { config, pins } = parseConfigForPinning(text, file);
  const chosen = config.nodes
    .map((node, index) => ({ node, index, pin: pins[index] }))
    .filter((n): n is { node: ResolvedNode; index: number; pin: NodePin } => n.pin !== undefined)
    .filter((n) => options.node === undefined || n.node.name === options.node);
  if (chosen.length === 0) {
    const names = config.nodes.map((n) => n.name);
    io.stderr.write(
      `okome hostkeys: no node "${options.node ?? ''}" in ${file}.${didYouMean(options.node ?? '', names)}\nNodes: ${names.join(', ')}\n`,
    );
    return ExitCode.ConfigError;
  }
  const timeoutMs = config.timeouts.sshConnectMs;
  const verdicts = await Promise.all(chosen.map((n) => hostKeyVerdict(n.node, n.pin.state, { timeoutMs })));

  io.stdout.write(
    `${file}: the host key each node's sshd proves it holds (key exchange completed, nothing authenticated), within ${timeoutMs} ms\n`,
  );
  const width = Math.max(...chosen.map((n) => n.node.name.length));
  const toPin = new Map<number, string>();
  let mismatches = 0;
  let unverified = 0;
  chosen.forEach(({ node, index }, i) => {
    const verdict = verdicts[i] as HostKeyVerdict;
    const head = `${node.name.padEnd(width)}  ${node.address}:${node.ssh.port}`;
    switch (verdict.kind) {
      case 'match':
        io.stdout.write(`${head}  ${describeOffered(verdict.offered)}  match (pinned)\n`);
        return;
      case 'mismatch':
        mismatches++;
        io.stdout.write(`${head}  ${describeOffered(verdict.offered)}  MISMATCH: pinned ${verdict.pinned}\n`);
        io.stderr.write(`${mismatchWarning(node, index, verdict.offered)}\n`);
        return;
      case 'unreachable':
        unverified++;
        io.stdout.write(`${head}  unreachable: ${verdict.reason}\n`);
        return;
      case 'unpinned':
        toPin.set(index, verdict.offered.fingerprint);
        io.stdout.write(
          `${head}  ${describeOffered(verdict.offered)}  not pinned${verdict.placeholder === undefined ? '' : ' (the example’s placeholder)'}\n` +
            `      trust on first use: make sure this is ${node.name}'s key before trusting it (on ${node.name}: ssh-keygen -lf ${hostKeyFile(verdict.offered)})\n` +
            `      pin it under nodes[${index}].ssh${options.write ? '' : ' (or run with --write)'}:\n` +
            `        hostKey: ${verdict.offered.fingerprint}\n`,
        );
    }
  });

  if (options.write && toPin.size > 0) {
    if (mismatches > 0) {
      io.stderr.write(
        `okome hostkeys: nothing written: a node's key differs from its pin, so this network may be intercepted; trust on first use is not safe now.\n`,
      );
    } else {
      const pinned = writePins(file, text, toPin, config.nodes, io);
      if (pinned === undefined) return ExitCode.ConfigError;
    }
  } else if (toPin.size > 0) unverified += toPin.size;

  if (mismatches > 0) return ExitCode.HostKeyMismatch;
  return unverified > 0 ? ExitCode.Incident : ExitCode.Ok;
}

/** Pins the keys in the file (only those lines change), checked by re-reading before it replaces the file. */
function writePins(
  file: string,
  text: string,
  keys: ReadonlyMap<number, string>,
  nodes: readonly ResolvedNode[],
  io: CliIo,
): number | undefined {
  const updated = withHostKeys(text, keys);
  // The written file must load with exactly these pins: a splice in the wrong place is caught here.
  const reread = parseConfig(updated, file);
  for (const [index, fingerprint] of keys) {
    if (reread.nodes[index]?.ssh.hostKey !== fingerprint) {
      io.stderr.write(
        `okome hostkeys: nothing written: the edit of nodes[${index}] did not read back as intended\n`,
      );
      return undefined;
    }
  }
  if (readConfigText(file) !== text) {
    io.stderr.write(
      `okome hostkeys: nothing written: ${file} changed while the keys were scanned; run it again\n`,
    );
    return undefined;
  }
  // Beside the file (the symlink's target), then renamed over it: a reader never sees half a
  // configuration. Mode and owner are the original's (root may be editing the bot's file).
  const real = realpathSync(file);
  const temporary = join(
    dirname(real),
    `.${basename(real)}.okome-hostkeys-${randomBytes(6).toString('hex')}`,
  );
  try {
    const original = statSync(real);
    writeFileSync(temporary, updated, { flag: 'wx', mode: 0o600 });
    try {
      chownSync(temporary, original.uid, original.gid);
    } catch {
      // Not root: the file stays this user's, as the original most likely is.
    }
    chmodSync(temporary, original.mode & 0o7777);
    renameSync(temporary, real);
  } catch (error) {
    try {
      unlinkSync(temporary);
    } catch {
      // Never created.
    }
    io.stderr.write(
      `okome hostkeys: nothing written: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    return undefined;
  }
  for (const [index, fingerprint] of keys) {
    io.stdout.write(
      `pinned ${nodes[index]?.name ?? `nodes[${index}]`}: nodes[${index}].ssh.hostKey ${fingerprint} (trust on first use) in ${file}\n`,
    );
  }
  return keys.size;
}
