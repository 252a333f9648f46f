import { resolve } from 'node:path';
import { type NodePin, parseConfigForPinning } from '../config/host-key-pins.js';
import { configPath, type ResolvedNode, readConfigText } from '../config/load-config.js';
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
 * `okome hostkeys [--node NAME]`: each node's SSH host key, proven by a key exchange, next to
 * its pin, with the line to write where none is. It never edits the configuration: pinning is
 * the operator's act, after comparing the fingerprint on the Pi's own console. Exit 0 every key
 * matches its pin, 1 a node unpinned or unreachable, 5 a mismatch.
 */
export async function hostkeysCommand(
  options: { config: string | undefined; node: string | undefined },
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
        unverified++;
        io.stdout.write(
          `${head}  ${describeOffered(verdict.offered)}  not pinned${verdict.placeholder === undefined ? '' : ' (the example’s placeholder)'}\n` +
            `      trust on first use: make sure this is ${node.name}'s key before trusting it (on ${node.name}: ssh-keygen -lf ${hostKeyFile(verdict.offered)})\n` +
            `      pin it under nodes[${index}].ssh (okome never edits the file):\n` +
            `        hostKey: ${verdict.offered.fingerprint}\n`,
        );
    }
  });

  if (mismatches > 0) return ExitCode.HostKeyMismatch;
  return unverified > 0 ? ExitCode.Incident : ExitCode.Ok;
}
