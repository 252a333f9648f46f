import { z } from 'zod';
import type { AlertmanagerAuth } from '../alerts/alertmanager-api.js';
import { ErrorCode, OkomeError } from '../errors.js';

/** Secrets and endpoints that come only from the environment, never from the file. */
export interface EnvOptions {
  readonly slackBotToken: string | undefined;
  readonly slackAppToken: string | undefined;
  readonly slackSigningSecret: string | undefined;
  readonly slackApiUrl: string | undefined;
  readonly redisPassword: string | undefined;
  readonly alertmanagerToken: string | undefined;
  readonly keepalivedHookSecret: string | undefined;
  /** Alertmanager API credentials (silences): a bearer token, or a basic-auth user and password. */
  readonly alertmanagerApiToken: string | undefined;
  readonly alertmanagerApiUser: string | undefined;
  readonly alertmanagerApiPassword: string | undefined;
  readonly metricsToken: string | undefined;
  /** store.kind postgres: postgres://user[:password]@host:port/db (the password may be in PGPASSWORD). */
  readonly databaseUrl: string | undefined;
}

const envSchema = z.object({
  SLACK_BOT_TOKEN: z
    .string()
    .regex(/^xoxb-[A-Za-z0-9-]+$/, { error: 'must be a bot token starting with xoxb-' })
    .optional(),
  SLACK_APP_TOKEN: z
    .string()
    .regex(/^xapp-[A-Za-z0-9-]+$/, { error: 'must be an app-level token starting with xapp-' })
    .optional(),
  SLACK_SIGNING_SECRET: z
    .string()
    .regex(/^[A-Za-z0-9]{8,}$/, { error: 'must be the app signing secret (letters and digits)' })
    .optional(),
  SLACK_API_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL ending in /api/' }).optional(),
  REDIS_PASSWORD: z.string().min(1).optional(),
  OKOME_ALERTMANAGER_TOKEN: z.string().min(16, { error: 'must be at least 16 characters' }).optional(),
  OKOME_KEEPALIVED_SECRET: z.string().min(16, { error: 'must be at least 16 characters' }).optional(),
  OKOME_ALERTMANAGER_API_TOKEN: z.string().min(1).optional(),
  OKOME_ALERTMANAGER_API_USER: z
    .string()
    .min(1)
    .regex(/^[^:]*$/, { error: 'must not contain ":"' })
    .optional(),
  OKOME_ALERTMANAGER_API_PASSWORD: z.string().min(1).optional(),
  OKOME_METRICS_TOKEN: z.string().min(16, { error: 'must be at least 16 characters' }).optional(),
  OKOME_DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\/\S+$/, { error: 'must be a postgres://user@host:port/database URL' })
    .optional(),
});

/** Reads the environment once; empty strings count as unset. Names the variable on error. */
export function readEnvOptions(env: NodeJS.ProcessEnv = process.env): EnvOptions {
  const present = Object.fromEntries(
    Object.keys(envSchema.shape)
      .map((k) => [k, env[k]])
      .filter(([, v]) => v !== undefined && v !== ''),
  );
  const result = envSchema.safeParse(present);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `${i.path.join('.')} ${i.message}`);
    throw new OkomeError(
      ErrorCode.EnvInvalid,
      `environment: ${lines.join('; ')}. To resolve, set the variable(s) correctly or unset them.`,
      {
        userSafe: true,
      },
    );
  }
  const e = result.data;
  return {
    slackBotToken: e.SLACK_BOT_TOKEN,
    slackAppToken: e.SLACK_APP_TOKEN,
    slackSigningSecret: e.SLACK_SIGNING_SECRET,
    slackApiUrl: e.SLACK_API_URL,
    redisPassword: e.REDIS_PASSWORD,
    alertmanagerToken: e.OKOME_ALERTMANAGER_TOKEN,
    keepalivedHookSecret: e.OKOME_KEEPALIVED_SECRET,
    alertmanagerApiToken: e.OKOME_ALERTMANAGER_API_TOKEN,
    alertmanagerApiUser: e.OKOME_ALERTMANAGER_API_USER,
    alertmanagerApiPassword: e.OKOME_ALERTMANAGER_API_PASSWORD,
    metricsToken: e.OKOME_METRICS_TOKEN,
    databaseUrl: e.OKOME_DATABASE_URL,
  };
}

/**
 * Each node's own keepalived-notify secret, from the variable its `hookSecretEnv` names. A named
 * variable that is unset or short is an error: the operator meant that node to have a secret.
 */
export function readNodeHookSecrets(
  nodes: readonly { readonly name: string; readonly hookSecretEnv?: string | undefined }[],
  env: NodeJS.ProcessEnv = process.env,
): ReadonlyMap<string, string> {
  const secrets = new Map<string, string>();
  const problems: string[] = [];
  for (const node of nodes) {
    if (node.hookSecretEnv === undefined) continue;
    const value = env[node.hookSecretEnv] ?? '';
    if (value.length < 16) {
      problems.push(
        `${node.hookSecretEnv} (nodes.${node.name}.hookSecretEnv) ${value === '' ? 'is not set' : 'must be at least 16 characters'}`,
      );
    } else secrets.set(node.name, value);
  }
  if (problems.length > 0) {
    throw new OkomeError(
      ErrorCode.EnvInvalid,
      `environment: ${problems.join('; ')}. To resolve, set each node's hook secret (the same value as OKOME_NOTIFY_SECRET in that node's /etc/okome/notify.env).`,
      { userSafe: true },
    );
  }
  return secrets;
}

/**
 * The credentials for Alertmanager's API that `alerts.alertmanager.auth` asks for, from the
 * environment. A kind whose variables are unset is an error that names them.
 */
export function alertmanagerAuthFrom(
  kind: 'none' | 'bearer' | 'basic',
  env: Pick<EnvOptions, 'alertmanagerApiToken' | 'alertmanagerApiUser' | 'alertmanagerApiPassword'>,
): AlertmanagerAuth {
  const missing = (names: string) =>
    new OkomeError(
      ErrorCode.EnvInvalid,
      `environment: alerts.alertmanager.auth is ${kind}, but ${names} is not set. To resolve, set it or change alerts.alertmanager.auth.`,
      { userSafe: true },
    );
  if (kind === 'bearer') {
    if (env.alertmanagerApiToken === undefined) throw missing('OKOME_ALERTMANAGER_API_TOKEN');
    return { kind, token: env.alertmanagerApiToken };
  }
  if (kind === 'basic') {
    if (env.alertmanagerApiUser === undefined || env.alertmanagerApiPassword === undefined)
      throw missing('OKOME_ALERTMANAGER_API_USER or OKOME_ALERTMANAGER_API_PASSWORD');
    return { kind, user: env.alertmanagerApiUser, password: env.alertmanagerApiPassword };
  }
  return { kind: 'none' };
}
