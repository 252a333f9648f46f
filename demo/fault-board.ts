import { applyFault, FAULT_NAMES, type FaultName, revertFault } from '../test/support/lab/faults.js';
import type { Lab } from '../test/support/lab/lab.js';
import { LAB_NODES, type LabNode, PI_NODES, PI_SPECS } from '../test/support/lab/topology.js';
import type { FaultView, LabView } from './web/api-types.js';

/** Faults that take a node, and which nodes; the others act on the orchestrator, Redis or the bot. */
const NODE_FAULTS: Partial<Record<FaultName, readonly LabNode[]>> = {
  'service-stop': PI_NODES,
  'keepalived-kill': PI_NODES,
  'link-down': LAB_NODES,
  'node-dead': PI_NODES,
  'daemons-killed': PI_NODES,
  chaos: PI_NODES,
  'streaming-directives-removed': PI_NODES,
  'host-key-change': PI_NODES,
};
const SERVICE_FAULTS: ReadonlySet<FaultName> = new Set(['service-stop', 'chaos']);
/** Every unit a lab Pi runs: the only services a fault may name. */
export const LAB_UNITS: readonly string[] = [...new Set(PI_NODES.flatMap((n) => PI_SPECS[n].units))];

export interface FaultTarget {
  readonly name: FaultName;
  readonly node: LabNode | null;
  readonly service: string | null;
}

interface Preset extends FaultTarget {
  readonly label: string;
  readonly shows: string;
}

const preset = (
  name: FaultName,
  node: LabNode | null,
  service: string | null,
  label: string,
  shows: string,
): Preset => ({ name, node, service, label, shows });

/** The panel's faults, in the runbook's order; the tour on the page refers to them by id. */
export const FAULT_PRESETS: readonly Preset[] = [
  preset('service-stop', 'pi-a', 'nginx', 'Stop nginx on pi-a', '1 (and a failover)'),
  preset('service-stop', 'pi-b', 'redis-server', 'Stop redis on pi-b', '2'),
  preset('service-stop', 'pi-a', 'keepalived', 'Stop keepalived on pi-a', 'failover'),
  preset('service-stop', 'pi-b', 'keepalived', 'Stop keepalived on pi-b', '3 (with pi-a’s)'),
  preset('link-down', 'pi-a', null, 'Cut pi-a’s link', '4'),
  preset('node-dead', 'pi-a', null, 'pi-a dead (hung, carrier up)', '4'),
  preset('orchestrator-down', null, null, 'Orchestrator down', '5'),
  preset('orchestrator-503', null, null, 'Orchestrator answers 503', '5'),
  preset('streaming-directives-removed', 'pi-a', null, 'Streaming directives removed on pi-a', '5b'),
  preset('budget-runaway', null, null, 'Runaway agent budgets', '6 (with the miss storm)'),
  preset('redis-miss-storm', null, null, 'Redis miss storm', '6'),
  preset('chaos', 'pi-a', null, 'Chaos on pi-a', '7'),
  preset('keepalived-kill', 'pi-a', null, 'Kill keepalived hard on pi-a', 'split brain'),
  preset('bot-isolated', null, null, 'Cut the bot off the lab', 'isolation'),
  preset('host-key-change', 'pi-b', null, 'New SSH host key on pi-b', 'key mismatch'),
];
export function faultId(target: FaultTarget): string {
  return [target.name, target.node ?? '', target.service ?? ''].join(':');
}

/** The target with the lab's defaults filled in, or why the request makes no sense. */
export function resolveTarget(name: FaultName, node?: string, service?: string): FaultTarget | string {
  const nodes = NODE_FAULTS[name];
  if (nodes === undefined && node !== undefined) return `${name} takes no node`;
  if (!SERVICE_FAULTS.has(name) && service !== undefined) return `${name} takes no service`;
  if (nodes !== undefined && node !== undefined && !(nodes as readonly string[]).includes(node))
    return `${name} takes one of: ${nodes.join(', ')}`;
  if (service !== undefined && !LAB_UNITS.includes(service)) return `not a lab unit: ${service.slice(0, 40)}`;
  const resolvedNode = nodes === undefined ? null : ((node as LabNode | undefined) ?? 'pi-a');
  let resolvedService: string | null = null;
  if (name === 'service-stop') resolvedService = service ?? 'nginx';
  if (name === 'chaos') resolvedService = service ?? (resolvedNode === 'pi-b' ? 'redis-server' : 'nginx');
  return { name, node: resolvedNode, service: resolvedService };
}

export function isFault(name: string): name is FaultName {
  return (FAULT_NAMES as readonly string[]).includes(name);
}

/**
 * The faults the demo applied and has not reverted. Lab operations run one at a time, in the
 * order asked: two clicks in the panel never race on one node.
 */
export class FaultBoard {
  readonly #applied = new Map<string, FaultTarget>();
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly lab: Lab,
    private readonly onChange: (views: readonly FaultView[]) => void,
  ) {}

  views(): FaultView[] {
    const shown = new Map<string, FaultView>();
    for (const p of FAULT_PRESETS) {
      const id = faultId(p);
      shown.set(id, { ...this.#view(p, p.label, p.shows), applied: this.#applied.has(id) });
    }
    for (const [id, t] of this.#applied) {
      if (!shown.has(id)) shown.set(id, { ...this.#view(t, id, ''), applied: true });
    }
    return [...shown.values()];
  }

  apply(target: FaultTarget): Promise<Record<string, unknown>> {
    return this.#serial(async () => {
      const handle = await applyFault(this.lab, target.name, this.#params(target) as never);
      this.#applied.set(faultId(target), target);
      this.onChange(this.views());
      return handle.details;
    });
  }

  revert(target: FaultTarget): Promise<void> {
    return this.#serial(async () => {
      // From the same parameters: a revert needs nothing the apply kept.
      await revertFault(this.lab, target.name, this.#params(target) as never);
      this.#applied.delete(faultId(target));
      this.onChange(this.views());
    });
  }

  /** A stopped unit the bot (or anyone) started again is no longer an applied fault. */
  noteLab(view: LabView): void {
    let changed = false;
    for (const [id, t] of this.#applied) {
      if (t.name !== 'service-stop' || t.node === null || t.service === null) continue;
      if (view.units[t.node]?.[t.service] === 'active') {
        this.#applied.delete(id);
        changed = true;
      }
    }
    if (changed) this.onChange(this.views());
  }

  #params(t: FaultTarget): Record<string, unknown> {
    return {
      ...(t.node === null ? {} : { node: t.node }),
      ...(t.service === null ? {} : { service: t.service }),
    };
  }

  #view(t: FaultTarget, label: string, shows: string): Omit<FaultView, 'applied'> {
    return { id: faultId(t), name: t.name, node: t.node, service: t.service, label, shows };
  }

  #serial<T>(op: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(op, op);
    this.#queue = next.catch(() => undefined);
    return next;
  }
}
