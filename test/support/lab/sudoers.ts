import { stringify } from 'yaml';
import { parseConfig } from '../../../src/config/load-config.js';
import { generateNodeSudoers } from '../../../src/remediation/sudoers.js';
import { buildBotConfig } from './bot-config.js';
import type { PiNode } from './topology.js';

// sudoers does not depend on keys or paths: placeholders let it be generated before they exist.
const PLACEHOLDER_KEY = `SHA256:${'A'.repeat(43)}`;

/**
 * The node's sudoers drop-in: exactly what `okome sudoers --node NODE` generates from the lab's
 * own bot configuration (the catalogue's remediation commands and the read-only diagnostics
 * that need sudo), so the lab proves the generated file, not a hand-written one.
 *
 * Paths are the production ones (`/usr/bin/systemctl`); in the lab, the lab systemctl is bind-
 * mounted both there and on /usr/local/bin (which sudo's secure_path finds first), and sudo
 * matches a command by device and inode as well as by path, so the same rules hold.
 */
export function labSudoers(node: PiNode): string {
  const input = buildBotConfig({
    privateKeyPath: '/dev/null',
    hostKeys: { 'pi-a': PLACEHOLDER_KEY, 'pi-b': PLACEHOLDER_KEY },
    storePath: '/dev/null',
  });
  const config = parseConfig(stringify(input), 'lab-bot-config.yml');
  return generateNodeSudoers(config, node);
}
