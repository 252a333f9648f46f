import { z } from 'zod';

/**
 * The `metrics:` section. GET /metrics (Prometheus text) and GET /readyz are served on the bot's
 * HTTP server, where /metrics needs the bearer token OKOME_METRICS_TOKEN (without it: 503,
 * disabled); or, with `listen`, on a listener of their own (e.g. loopback for a local
 * Prometheus or a node exporter proxy), where the token is optional.
 */
export const metricsConfigSchema = z
  .strictObject({
    listen: z
      .strictObject({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.int().min(0).max(65_535),
      })
      .optional(),
  })
  .prefault({});

export type MetricsConfig = z.output<typeof metricsConfigSchema>;
