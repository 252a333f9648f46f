/**
 * The lab's fixed shape: namespace names, addresses and ports. Addresses mirror the runbook's
 * last octets on a private subnet that exists only inside the lab's network namespaces.
 */

export const PI_NODES = ['pi-a', 'pi-b'] as const;
export type PiNode = (typeof PI_NODES)[number];
export const LAB_NODES = ['pi-a', 'pi-b', 'orch', 'bot'] as const;
export type LabNode = (typeof LAB_NODES)[number];
/** Every namespace the lab creates, the switch included. */
export type LabNamespaceOwner = LabNode | 'sw';

export const NAMESPACE_PREFIX = 'okl-';
export const SWITCH_NAMESPACE = 'okl-sw';

export function namespaceOf(node: LabNamespaceOwner): string {
  return `${NAMESPACE_PREFIX}${node}`;
}

export const LAB_SUBNET = '10.86.0.0/24';
export const LAB_ADDRESSES = Object.freeze({
  'pi-a': '10.86.0.20',
  'pi-b': '10.86.0.19',
  orch: '10.86.0.25',
  bot: '10.86.0.50',
  vip: '10.86.0.18',
} as const);
export type LabAddresses = typeof LAB_ADDRESSES;

/** The point-to-point link between the root namespace (the test process) and okl-bot only. */
export const HOST_LINK = Object.freeze({
  rootInterface: 'okl-host',
  botInterface: 'host0',
  rootAddress: '10.86.255.1',
  botAddress: '10.86.255.2',
  prefixLength: 30,
} as const);

export const PORTS = Object.freeze({
  http: 80,
  ssh: 22,
  redis: 6379,
  orchestrator: 8000,
  /** The bot's own HTTP port in the lab config: keepalived's hooks land there by default. */
  botHttp: 9099,
} as const);

export const DEFAULT_NOTIFY_URL = `http://${LAB_ADDRESSES.bot}:${PORTS.botHttp}/hooks/keepalived`;

/** Where lab state lives while a lab is up: one directory, removed entirely by `down`. */
export const RUN_DIR = '/run/okome-lab';
export const STATE_FILE = `${RUN_DIR}/state.json`;
/** Work dirs are mkdtemp'd with this prefix and carry a marker file so `down` can find strays. */
export const WORK_DIR_PREFIX = '/tmp/okome-lab-';
export const WORK_DIR_MARKER = '.okome-lab';

export const SSH_USER = 'okome';

export interface PiSpec {
  readonly node: PiNode;
  readonly label: string;
  readonly units: readonly string[];
  /** The units the bot configuration lists (sshd is the lab's plumbing, not the bot's). */
  readonly botServices: readonly string[];
  readonly keepalivedState: 'MASTER' | 'BACKUP';
  readonly priority: number;
}

export const PI_SPECS: Readonly<Record<PiNode, PiSpec>> = Object.freeze({
  'pi-a': {
    node: 'pi-a',
    label: 'frontend-cache',
    units: ['ssh', 'nginx', 'okome-prewarm.timer', 'keepalived'],
    botServices: ['nginx', 'keepalived', 'okome-prewarm.timer'],
    keepalivedState: 'MASTER',
    priority: 150,
  },
  'pi-b': {
    node: 'pi-b',
    // The cold spare answers as itself, so a client can tell which Pi served it after failover.
    label: 'backend-spare',
    units: ['ssh', 'redis-server', 'nginx', 'keepalived'],
    botServices: ['redis-server', 'nginx', 'keepalived'],
    keepalivedState: 'BACKUP',
    priority: 100,
  },
});

export const PREWARM_PATHS = ['/', '/ui-schema/home', '/ui-schema/nav'] as const;

/** Shared with the bot under test (OKOME_KEEPALIVED_SECRET): the nodes sign their hooks with it. */
export const LAB_KEEPALIVED_SECRET = 'lab-keepalived-hook-secret-0123456789';
/** The bot under test's OKOME_ALERTMANAGER_TOKEN. */
export const LAB_ALERTMANAGER_TOKEN = 'lab-alertmanager-token-0123456789';
/** The repo's contrib/ (the shipped keepalived notify script). */
export const REPO_CONTRIB = new URL('../../../contrib/', import.meta.url).pathname;
