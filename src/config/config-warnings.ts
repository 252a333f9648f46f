import type { LoadedConfig } from './load-config.js';

/** A valid configuration that is probably not what was meant: said by `config check` and at start. */
export interface ConfigWarning {
  readonly path: string;
  readonly message: string;
  readonly fix: string;
}

export function configWarnings(config: LoadedConfig): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  if (config.slack.allowedChannels.length === 0) {
    warnings.push({
      path: 'slack.allowedChannels',
      message: 'empty: okome answers commands in every channel it is in',
      fix: `list the channels it should answer in, e.g. [${config.slack.incidentChannel}]`,
    });
  }
  return warnings;
}
