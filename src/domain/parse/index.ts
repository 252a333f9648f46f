/**
 * Pure parsers of the output of the commands okome-bot runs on the cache nodes
 * (see `defaultCommands` in src/config/schema.ts). No I/O: strings in, discriminated results
 * out, and `{ kind: 'unknown', reason }` instead of an exception for anything unexpected.
 */
export * from './access-log.js';
export * from './chaos-flag.js';
export * from './df.js';
export * from './ip-addr.js';
export * from './ip-link.js';
export * from './iptables.js';
export * from './journal.js';
export * from './meminfo.js';
export * from './nginx-config.js';
export * from './nginx-includes.js';
export * from './nginx-tokens.js';
export * from './rate-limit-key.js';
export * from './redis-info-stats.js';
export * from './result.js';
export * from './service-state.js';
export * from './streaming-directives.js';
export * from './systemctl-status.js';
