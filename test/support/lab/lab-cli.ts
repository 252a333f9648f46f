/**
 * `npm run lab -- up [--monitoring] | down | status | exec NODE CMD… | ssh NODE CMD | fault NAME [NODE] [--revert] | faults`
 *
 * up      builds the lab and leaves it running; prints the bot config path and the addresses.
 *         --monitoring: also the monitoring loop (exporters, Prometheus, Alertmanager; docs/lab.md).
 * down    removes every trace of a lab (also a half-built or crashed one); idempotent.
 * status  what runs where, who holds the VIP, the orchestrator's mode.
 * exec    runs CMD as root inside NODE (pi-a, pi-b, orch, bot).
 * ssh     runs CMD on a Pi over SSH from okl-bot, as the lab user, host key pinned.
 * fault   applies fault NAME (optionally on NODE) and leaves it applied; with --revert, reverts it.
 *         Options: --service UNIT (service-stop, chaos), --delay-ms N (orchestrator-slow).
 */
import { performance } from 'node:perf_hooks';
import { labAvailability } from './availability.js';
import { FAULT_NAMES, type FaultName, isFaultName, revertFault } from './faults.js';
import { attachLab, type Lab, startLab } from './lab.js';
import { startMonitoring } from './monitoring.js';
import { downLab } from './teardown.js';
import { LAB_NODES, type LabNode, PI_NODES, PI_SPECS, type PiNode } from './topology.js';

function usage(): never {
  process.stderr.write(
    [
      'usage: npm run lab -- up [--monitoring] | down | status | exec NODE CMD… | ssh NODE CMD | fault NAME [NODE] [--revert] | faults',
      `nodes: ${LAB_NODES.join(', ')}`,
      `faults: ${FAULT_NAMES.join(', ')}`,
      '',
    ].join('\n'),
  );
  process.exit(2);
}

function isLabNode(name: string | undefined): name is LabNode {
  return name !== undefined && (LAB_NODES as readonly string[]).includes(name);
}

function isPiNode(name: string | undefined): name is PiNode {
  return name !== undefined && (PI_NODES as readonly string[]).includes(name);
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const value = args[i + 1];
  args.splice(i, 2);
  return value;
}

async function status(lab: Lab): Promise<void> {
  const out: string[] = [`work dir: ${lab.workDir}`, `bot config: ${lab.configPath}`];
  for (const node of PI_NODES) {
    const states = await Promise.all(
      PI_SPECS[node].units.map(async (unit) => `${unit}=${await lab.unitState(node, unit)}`),
    );
    out.push(`${node} (${lab.addresses[node]}): ${states.join(' ')}`);
  }
  const holders = await lab.vipHolders();
  const vip =
    holders.length === 0
      ? 'NOBODY'
      : holders.length > 1
        ? `SPLIT BRAIN: ${holders.join(' and ')}`
        : holders.join('');
  out.push(`VIP ${lab.addresses.vip}: ${vip}`);
  const orch = await lab.orchestratorState().then(
    (s) => `${s.mode}${s.mode === 'slow' ? ` (${s.delayMs} ms)` : ''}, ${s.served} requests served`,
    (error: unknown) => `unreachable (${String(error)})`,
  );
  out.push(`orchestrator (${lab.addresses.orch}:8000): ${orch}`);
  out.push(`test process ↔ okl-bot: ${lab.hostAddress} ↔ ${lab.botAddress}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) usage();
  if (command === 'faults') {
    process.stdout.write(`${FAULT_NAMES.join('\n')}\n`);
    return 0;
  }
  const availability = labAvailability();
  if (!availability.ok) {
    process.stderr.write(`lab: ${availability.reason}\n`);
    return 1;
  }
  switch (command) {
    case 'up': {
      const started = performance.now();
      const lab = await startLab({ log: (line) => process.stderr.write(`lab: ${line}\n`) });
      const seconds = ((performance.now() - started) / 1000).toFixed(2);
      process.stdout.write(`lab up in ${seconds} s\n`);
      if (rest.includes('--monitoring')) {
        const mon = await startMonitoring(lab);
        process.stdout.write(
          `monitoring: Prometheus ${mon.prometheusUrl}, Alertmanager ${mon.alertmanagerUrl} (posting to the bot at :9099 in okl-bot), configs in ${mon.dir}\n`,
        );
      }
      await status(lab);
      return 0;
    }
    case 'down': {
      const started = performance.now();
      const report = await downLab();
      const seconds = ((performance.now() - started) / 1000).toFixed(2);
      process.stdout.write(
        `lab down in ${seconds} s (${report.namespaces.length} namespaces, ${report.killed} processes, ${report.workDirs.length} work dirs removed)\n`,
      );
      return 0;
    }
    case 'status':
      await status(await attachLab());
      return 0;
    case 'exec': {
      const [node, ...cmd] = rest;
      if (!isLabNode(node) || cmd.length === 0) usage();
      const result = await (await attachLab()).exec(node, cmd);
      process.stdout.write(result.stdout);
      process.stderr.write(result.stderr);
      return result.code;
    }
    case 'ssh': {
      const [node, ...cmd] = rest;
      if (!isPiNode(node) || cmd.length === 0) usage();
      const result = await (await attachLab()).ssh(node, cmd.join(' '));
      process.stdout.write(result.stdout);
      process.stderr.write(result.stderr);
      return result.code;
    }
    case 'fault': {
      const args = [...rest];
      const revert = args.includes('--revert');
      const service = option(args, '--service');
      const delay = option(args, '--delay-ms');
      const [name, node] = args.filter((a) => a !== '--revert');
      if (name === undefined || !isFaultName(name)) usage();
      if (node !== undefined && !isLabNode(node)) usage();
      const params: Record<string, unknown> = {};
      if (node !== undefined) params.node = node;
      if (service !== undefined) params.service = service;
      if (delay !== undefined) params.delayMs = Number(delay);
      const lab = await attachLab();
      const fault: FaultName = name;
      if (revert) {
        await revertFault(lab, fault, params as never);
        process.stdout.write(`reverted ${fault}\n`);
      } else {
        const handle = await lab.fault(fault, params as never);
        process.stdout.write(
          `applied ${fault}: ${JSON.stringify(handle.details)}\nrevert with: npm run lab -- fault ${rest.join(' ')} --revert\n`,
        );
      }
      return 0;
    }
    default:
      usage();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`lab: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
