import { run, runOk } from './process-runner.js';
import {
  HOST_LINK,
  LAB_ADDRESSES,
  LAB_NODES,
  LAB_SUBNET,
  type LabNode,
  NAMESPACE_PREFIX,
  namespaceOf,
  SWITCH_NAMESPACE,
} from './topology.js';

/** The switch-side end of a node's link; taking it down is the "link down" fault. */
export function switchPortOf(node: LabNode): string {
  return `v-${node}`;
}

const ALL_NAMESPACES = [SWITCH_NAMESPACE, ...LAB_NODES.map(namespaceOf)];

/**
 * Builds the lab's network: a bridge in okl-sw, one veth per node created with both ends
 * already inside their namespaces (the root namespace never sees them), and the point-to-point
 * okl-host link to okl-bot. No namespace gets a default route; IPv6 is off in the lab so no
 * router advertisement can add one either.
 */
export async function createNetwork(): Promise<void> {
  const root: string[] = ALL_NAMESPACES.map((ns) => `netns add ${ns}`);
  for (const node of LAB_NODES) {
    root.push(
      `link add eth0 netns ${namespaceOf(node)} type veth peer name ${switchPortOf(node)} netns ${SWITCH_NAMESPACE}`,
    );
  }
  root.push(
    `link add ${HOST_LINK.rootInterface} type veth peer name ${HOST_LINK.botInterface} netns ${namespaceOf('bot')}`,
    `address add ${HOST_LINK.rootAddress}/${HOST_LINK.prefixLength} dev ${HOST_LINK.rootInterface}`,
    `link set ${HOST_LINK.rootInterface} up`,
  );
  await runOk('ip', ['-batch', '-'], { input: `${root.join('\n')}\n` });
  // A safety net while the lab is up: lab addresses typed into the test process by mistake
  // fail at once instead of leaving through the machine's default route.
  await run('ip', ['route', 'add', 'unreachable', LAB_SUBNET]);

  const sysctls = [
    'net.ipv6.conf.all.disable_ipv6=1',
    'net.ipv6.conf.default.disable_ipv6=1',
    'net.ipv4.ip_forward=0',
    // The VIP can be bound before keepalived assigns it (nginx listens on all addresses anyway).
    'net.ipv4.ip_nonlocal_bind=1',
  ];
  await Promise.all(
    ALL_NAMESPACES.map((ns) => runOk('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', ...sysctls])),
  );

  const perNamespace: Array<[string, string[]]> = [
    [
      SWITCH_NAMESPACE,
      [
        'link set lo up',
        'link add br0 type bridge stp_state 0 forward_delay 0',
        'link set br0 up',
        ...LAB_NODES.map((node) => `link set ${switchPortOf(node)} master br0 up`),
      ],
    ],
    ...LAB_NODES.map((node): [string, string[]] => [
      namespaceOf(node),
      [
        'link set lo up',
        `address add ${LAB_ADDRESSES[node]}/24 dev eth0`,
        'link set eth0 up',
        ...(node === 'bot'
          ? [
              `address add ${HOST_LINK.botAddress}/${HOST_LINK.prefixLength} dev ${HOST_LINK.botInterface}`,
              `link set ${HOST_LINK.botInterface} up`,
            ]
          : []),
      ],
    ]),
  ];
  await Promise.all(
    perNamespace.map(([ns, lines]) =>
      runOk('ip', ['-n', ns, '-batch', '-'], { input: `${lines.join('\n')}\n` }),
    ),
  );
}

/** The lab namespaces that exist now (a crashed run may have left some). */
export async function listLabNamespaces(): Promise<string[]> {
  const result = await run('ip', ['netns', 'list']);
  return result.stdout
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name.startsWith(NAMESPACE_PREFIX));
}

/** Lines of `ip route` that are default routes, per lab namespace (IPv4 and IPv6). */
export async function defaultRoutes(): Promise<Array<{ namespace: string; route: string }>> {
  const found: Array<{ namespace: string; route: string }> = [];
  for (const ns of await listLabNamespaces()) {
    for (const family of ['-4', '-6']) {
      const result = await run('ip', ['-n', ns, family, 'route', 'show', 'default']);
      for (const route of result.stdout.split('\n').filter((line) => line.trim() !== '')) {
        found.push({ namespace: ns, route });
      }
    }
  }
  return found;
}

/** Refuses to go on when any lab namespace has a default route: the lab must stay closed. */
export async function assertNoDefaultRoute(): Promise<void> {
  const routes = await defaultRoutes();
  if (routes.length > 0) {
    throw new Error(
      `lab namespaces must have no default route, found: ${routes.map((r) => `${r.namespace}: ${r.route}`).join('; ')}. ` +
        'To resolve, run `npm run lab -- down` and start again; check nothing else adds routes to okl-* namespaces.',
    );
  }
}

/** Removes the root-side pieces and every okl-* namespace. Safe to call when none exist. */
export async function deleteNetwork(): Promise<void> {
  await run('ip', ['link', 'del', HOST_LINK.rootInterface]);
  await run('ip', ['route', 'del', 'unreachable', LAB_SUBNET]);
  for (const ns of await listLabNamespaces()) await run('ip', ['netns', 'del', ns]);
}
