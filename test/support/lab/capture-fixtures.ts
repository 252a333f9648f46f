/**
 * Captures the production commands' real output from the lab nodes, over SSH as the lab user,
 * into test/fixtures/parse/lab/ (the parsers' unit tests read them). Root only:
 *   npx tsx test/support/lab/capture-fixtures.ts
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, nodeCommand } from '../../../src/config/load-config.js';
import { commandPurposes, servicePurposes } from '../../../src/config/schema.js';
import { startLab } from './lab.js';

const OUT = join(import.meta.dirname, '../../fixtures/parse/lab');
// Changing commands (they act) are not captured.
const READ_ONLY = commandPurposes.filter(
  (p) => !['serviceRestart', 'chaosFlagRemove', 'firewallFlush'].includes(p),
);

const lab = await startLab();
try {
  mkdirSync(OUT, { recursive: true });
  // Some traffic so the access log and the journal have lines.
  for (let i = 0; i < 30; i += 1)
    await lab.curl(['-s', '-o', '/dev/null', `http://${lab.addresses.vip}/ui-schema/p${i % 7}`]);
  const config = loadConfig(lab.configPath);
  for (const node of config.nodes) {
    for (const purpose of READ_ONLY) {
      const services = servicePurposes.has(purpose) ? node.services : [undefined];
      for (const service of services) {
        const command = nodeCommand(node, purpose, service);
        const r = await lab.ssh(node.name as 'pi-a' | 'pi-b', command);
        const name = `${node.name}-${purpose}${service === undefined ? '' : `-${service}`}`;
        writeFileSync(join(OUT, `${name}.txt`), r.stdout);
        writeFileSync(join(OUT, `${name}.exit`), `${r.code}\n`);
        process.stdout.write(`${name}: exit ${r.code}, ${r.stdout.length} bytes\n`);
      }
    }
  }
} finally {
  await lab.down();
}
