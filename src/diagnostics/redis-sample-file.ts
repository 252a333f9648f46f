import { readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { LoadedConfig } from '../config/load-config.js';
import type { Logger } from '../logger.js';
import type { RedisSample, RedisSampleStore } from './redis-window.js';

/**
 * The last Redis INFO sample in a small JSON file of its own beside the store (never in the
 * store: the serving bot owns that, and a one-shot CLI must not write it). The served bot and
 * each CLI run rewrite it at every sample, whole (a temporary file renamed over it), so a CLI
 * run starts its hit-ratio window at the newest sample either took instead of waiting for a
 * second one. Unreadable, unwritable or malformed: as if there were none (that run waits).
 */
export class RedisSampleFile implements RedisSampleStore {
  constructor(
    private readonly path: string,
    private readonly logger?: Logger,
  ) {}

  async load(): Promise<RedisSample | undefined> {
    try {
      const raw = JSON.parse(await readFile(this.path, 'utf8')) as Record<string, unknown>;
      const { at, keyspaceHits, keyspaceMisses, runId } = raw;
      if (![at, keyspaceHits, keyspaceMisses].every((n) => Number.isSafeInteger(n) && (n as number) >= 0))
        return undefined;
      return {
        at: at as number,
        keyspaceHits: keyspaceHits as number,
        keyspaceMisses: keyspaceMisses as number,
        runId: typeof runId === 'string' ? runId : undefined,
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
        this.logger?.warn({ path: this.path, err: (error as Error).message }, 'redis sample file unreadable');
      return undefined;
    }
  }

  async save(sample: RedisSample): Promise<void> {
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      await writeFile(tmp, `${JSON.stringify({ ...sample, at: Math.round(sample.at) })}\n`, { mode: 0o644 });
      await rename(tmp, this.path);
    } catch (error) {
      this.logger?.debug({ path: this.path, err: (error as Error).message }, 'redis sample not kept');
    }
  }
}

/** The configured file (`redis.sample.path`), else `<store.path>.redis-sample.json`; relative to the config file. */
export function redisSamplePath(config: LoadedConfig): string {
  const path = config.redis.sample.path ?? `${config.store.path}.redis-sample.json`;
  return isAbsolute(path) ? path : resolve(dirname(config.file), path);
}
