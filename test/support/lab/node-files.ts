import { chmod, copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runOk } from './process-runner.js';
import { generateKeyPair, type KeyPair } from './ssh-keys.js';
import { labSudoers } from './sudoers.js';
import { ASSETS_DIR, renderTemplate } from './templates.js';
import {
  LAB_ADDRESSES,
  LAB_KEEPALIVED_SECRET,
  PI_SPECS,
  type PiNode,
  PORTS,
  PREWARM_PATHS,
  REPO_CONTRIB,
  SSH_USER,
} from './topology.js';

/** Where one Pi's files live in the work dir; the overlays' upper layers are the node's own files. */
export interface NodePaths {
  readonly root: string;
  /** Upper layer of the node's /etc: `${etc}/okome/CHAOS_ENABLE` is the node's chaos flag. */
  readonly etc: string;
  readonly varLog: string;
  readonly varLib: string;
  readonly bin: string;
  /** Originals that faults restore (nginx.conf, the SSH host key). */
  readonly pristine: string;
}

export function nodePaths(workDir: string, node: PiNode): NodePaths {
  const root = join(workDir, 'nodes', node);
  return {
    root,
    etc: join(root, 'upper', 'etc'),
    varLog: join(root, 'upper', 'var-log'),
    varLib: join(root, 'upper', 'var-lib'),
    bin: join(root, 'bin'),
    pristine: join(root, 'pristine'),
  };
}

export interface NodeFileOptions {
  readonly workDir: string;
  readonly node: PiNode;
  readonly clientKey: KeyPair;
  readonly notifyUrl: string;
  readonly advertInt: number;
  readonly prewarmIntervalSec: number;
}

async function put(path: string, content: string, mode = 0o644): Promise<void> {
  await writeFile(path, content, { mode });
  // writeFile's mode is filtered by the umask; the modes here matter to sshd, sudo and keepalived.
  await chmod(path, mode);
}

/**
 * Writes everything a Pi needs before its namespace is set up: config files in the upper layer
 * of its /etc, its SSH host key, its sudoers drop-in (checked with visudo) and the lab's
 * node-side commands. Returns the node's host key.
 */
export async function writeNodeFiles(options: NodeFileOptions): Promise<KeyPair> {
  const { node, workDir } = options;
  const spec = PI_SPECS[node];
  const paths = nodePaths(workDir, node);
  const address = LAB_ADDRESSES[node];
  const dirs = [
    paths.etc,
    paths.varLog,
    paths.varLib,
    join(paths.root, 'work', 'etc'),
    join(paths.root, 'work', 'var-log'),
    join(paths.root, 'work', 'var-lib'),
    paths.bin,
    paths.pristine,
    ...['okome', 'okome-lab', 'nginx', 'keepalived', 'ssh/authorized_keys', 'sudoers.d', 'redis'].map((d) =>
      join(paths.etc, d),
    ),
  ];
  for (const dir of dirs) {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await chmod(dir, 0o755);
  }

  await put(join(paths.etc, 'hostname'), `${node}\n`);
  await put(
    join(paths.etc, 'hosts'),
    [
      '127.0.0.1 localhost',
      `127.0.1.1 ${node}`,
      `${LAB_ADDRESSES['pi-a']} pi-a`,
      `${LAB_ADDRESSES['pi-b']} pi-b`,
      `${LAB_ADDRESSES.orch} orch`,
      `${LAB_ADDRESSES.bot} bot`,
      `${LAB_ADDRESSES.vip} okome-vip`,
      '',
    ].join('\n'),
  );
  await put(
    join(paths.etc, 'okome-lab', 'node.env'),
    [
      `NODE=${node}`,
      `UNITS="${spec.units.join(' ')}"`,
      `NOTIFY_URL="${options.notifyUrl}"`,
      `PREWARM_INTERVAL=${options.prewarmIntervalSec}`,
      `PREWARM_PATHS="${PREWARM_PATHS.join(' ')}"`,
      '',
    ].join('\n'),
  );

  const nginxConf = renderTemplate('nginx.conf', {
    NODE: node,
    NODE_LABEL: spec.label,
    ORCH_ADDRESS: LAB_ADDRESSES.orch,
    ORCH_PORT: PORTS.orchestrator,
  });
  await put(join(paths.etc, 'nginx', 'nginx.conf'), nginxConf);
  await put(join(paths.pristine, 'nginx.conf'), nginxConf);
  await put(
    join(paths.etc, 'keepalived', 'keepalived.conf'),
    renderTemplate('keepalived.conf', {
      NODE: node,
      STATE: spec.keepalivedState,
      PRIORITY: spec.priority,
      ADVERT_INT: options.advertInt,
      VIP: LAB_ADDRESSES.vip,
    }),
  );
  if (spec.units.includes('redis-server')) {
    await put(
      join(paths.etc, 'redis', 'redis.conf'),
      renderTemplate('redis.conf', { NODE: node, ADDRESS: address }),
    );
  }
  await put(
    join(paths.etc, 'ssh', 'sshd_config'),
    renderTemplate('sshd_config', { NODE: node, ADDRESS: address, SSH_USER }),
  );
  await put(join(paths.etc, 'ssh', 'authorized_keys', SSH_USER), `${options.clientKey.publicLine}\n`);

  const sudoersPath = join(paths.etc, 'sudoers.d', 'okome-lab');
  await put(sudoersPath, labSudoers(node), 0o440);
  await runOk('visudo', ['-c', '-q', '-f', sudoersPath]);

  // The notify hook is the one okome-bot ships (signed with the lab's secret), not a stand-in.
  await copyFile(join(REPO_CONTRIB, 'keepalived-notify'), join(paths.bin, 'okome-notify'));
  await chmod(join(paths.bin, 'okome-notify'), 0o755);
  await put(
    join(paths.etc, 'okome', 'notify.env'),
    [
      `OKOME_NOTIFY_URL=${options.notifyUrl}`,
      `OKOME_NOTIFY_SECRET=${LAB_KEEPALIVED_SECRET}`,
      `OKOME_NODE=${node}`,
      'OKOME_INSTANCE=VI_1',
      '',
    ].join('\n'),
    0o600,
  );
  for (const name of await readdir(join(ASSETS_DIR, 'bin'))) {
    if (name === 'okome-notify') continue;
    await copyFile(join(ASSETS_DIR, 'bin', name), join(paths.bin, name));
    await chmod(join(paths.bin, name), 0o755);
  }

  const hostKey = await generateKeyPair(join(paths.etc, 'ssh', 'ssh_host_ed25519_key'), `root@${node}`);
  await copyFile(hostKey.privatePath, join(paths.pristine, 'ssh_host_ed25519_key'));
  await copyFile(hostKey.publicPath, join(paths.pristine, 'ssh_host_ed25519_key.pub'));
  return hostKey;
}
