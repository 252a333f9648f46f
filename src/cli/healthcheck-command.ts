import { resolve } from 'node:path';
import { configPath, loadConfig } from '../config/load-config.js';
import { type CliIo, ExitCode } from './cli-io.js';

/** Where a bot on this host answers: its own listen address, a wildcard meaning loopback. */
export function healthzUrl(http: { port: number; host?: string | undefined }): string {
  const host =
    http.host === undefined || http.host === '0.0.0.0' ? '127.0.0.1' : http.host === '::' ? '::1' : http.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${http.port}/healthz`;
}

/**
 * `okome healthcheck`: GET /healthz of the bot this configuration describes (Docker's
 * HEALTHCHECK, systemd or a cron). Exit 0 healthy, 1 not (unreachable, 503, too slow).
 */
export async function healthcheckCommand(
  options: { config: string | undefined; timeoutMs?: number },
  io: CliIo,
): Promise<number> {
  const config = loadConfig(resolve(io.cwd, configPath(options.config, io.env)));
  const url = healthzUrl(config.http);
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(options.timeoutMs ?? 2500) });
    await res.body?.cancel();
    io.stdout.write(`${url}: ${res.status}\n`);
    return res.ok ? ExitCode.Ok : ExitCode.Incident;
  } catch (error) {
    io.stderr.write(
      `${url}: ${error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error)}\n`,
    );
    return ExitCode.Incident;
  }
}
