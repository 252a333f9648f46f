import { resolve } from 'node:path';
import { configPath, loadConfig } from '../config/load-config.js';
import { readEnvOptions } from '../config/read-env.js';
import { storeTarget } from '../store/open-store.js';
import type { Store } from '../store/store-port.js';
import type { CliIo } from './cli-io.js';

/**
 * The configured store, opened read-only for a CLI reader (report, coverage, drills): no create,
 * no migration, no write, so it works beside a serving bot.
 */
export async function openReadOnlyStore(configOption: string | undefined, io: CliIo): Promise<Store> {
  const file = resolve(io.cwd, configPath(configOption, io.env));
  const config = loadConfig(file);
  const target = storeTarget(config.store, {
    configFile: file,
    databaseUrl: readEnvOptions(io.env).databaseUrl,
  });
  return target.open({ readOnly: true });
}
