import { spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';

export type LabAvailability = { readonly ok: true } | { readonly ok: false; readonly reason: string };

const TOOLS = [
  'ip',
  'nsenter',
  'unshare',
  'setsid',
  'nginx',
  'redis-server',
  'redis-cli',
  'sshd',
  'ssh',
  'ssh-keygen',
  'keepalived',
  'iptables',
  'sudo',
  'visudo',
  'curl',
  'bash',
  'useradd',
];
const SEARCH_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

function findTool(name: string): boolean {
  return SEARCH_PATH.some((dir) => {
    try {
      accessSync(`${dir}/${name}`, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Whether this machine can run the lab, and if not, why, in words a developer can act on.
 * Synchronous so test files can decide at collection time.
 */
export function labAvailability(): LabAvailability {
  if (process.platform !== 'linux')
    return { ok: false, reason: `the lab needs Linux network namespaces (this is ${process.platform})` };
  if (process.getuid?.() !== 0) {
    return {
      ok: false,
      reason: 'the lab needs root (network namespaces, mounts, iptables): run the lab tests as root',
    };
  }
  const missing = TOOLS.filter((tool) => !findTool(tool));
  if (missing.length > 0) {
    return {
      ok: false,
      reason: `missing tools: ${missing.join(', ')}. To resolve: apt-get install nginx redis-server redis-tools openssh-server openssh-client keepalived iptables sudo curl iproute2 util-linux`,
    };
  }
  if (!readFileSync('/proc/filesystems', 'utf8').includes('overlay')) {
    return {
      ok: false,
      reason: 'the kernel has no overlay filesystem (each Pi overlays /etc, /var/log, /var/lib)',
    };
  }
  const probe = spawnSync('unshare', ['--net', '--mount', '--uts', 'true'], {
    encoding: 'utf8',
    timeout: 5000,
  });
  if (probe.status !== 0) {
    return {
      ok: false,
      reason: `the kernel refuses new namespaces: ${(probe.stderr || String(probe.error)).trim()}`,
    };
  }
  return { ok: true };
}
