import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
const steps = readFileSync(join(root, 'scripts/docker-steps.sh'), 'utf8');

describe('Dockerfile', () => {
  it('builds with dev dependencies and runs dist/ as a non-root user with a HEALTHCHECK', () => {
    expect(dockerfile).toMatch(/FROM node:\S+ AS build/);
    expect(dockerfile).toMatch(/FROM node:\S+ AS run/);
    expect(dockerfile).toContain('USER node');
    expect(dockerfile).toMatch(/HEALTHCHECK .*\n?.*CMD/);
    expect(dockerfile).toContain('ENTRYPOINT ["node", "--max-semi-space-size=2", "dist/cli/okome.js"]');
  });

  it('runs as a homelab needs: a volume the node user owns for the store, EXPOSE, a default OKOME_CONFIG', () => {
    const run = dockerfile.slice(dockerfile.indexOf(' AS run'));
    expect(run).toMatch(/^VOLUME \/var\/lib\/okome-bot$/m);
    expect(run).toMatch(/^RUN mkdir -p \/var\/lib\/okome-bot.*&& chown node:node \/var\/lib\/okome-bot$/m);
    // Created and owned before the VOLUME line and before USER node, or a fresh volume is root's.
    expect(run.indexOf('chown node:node /var/lib/okome-bot')).toBeLessThan(run.indexOf('VOLUME'));
    expect(run.indexOf('VOLUME')).toBeLessThan(run.indexOf('USER node'));
    expect(run).toMatch(/^EXPOSE 3000$/m);
    expect(run).toMatch(/^ENV OKOME_CONFIG=\/etc\/okome\/okome\.yml$/m);
    // The example's store path is inside the volume.
    const example = readFileSync(join(root, 'config/okome.example.yml'), 'utf8');
    expect(example).toMatch(/^ {2}path: \/var\/lib\/okome-bot\/okome\.db$/m);
  });

  it('its HEALTHCHECK follows the configuration (okome healthcheck), reading no variable nothing sets', () => {
    expect(dockerfile).toMatch(
      /HEALTHCHECK [^\n]*\\\n\s+CMD \["node", "dist\/cli\/okome\.js", "healthcheck"\]/,
    );
    expect(dockerfile).not.toContain('OKOME_HTTP_PORT');
    expect(steps).toContain('dist/cli/okome.js healthcheck');
  });

  it('documents the multi-arch build for the Pis (linux/arm64)', () => {
    expect(dockerfile).toMatch(/docker buildx build --platform linux\/amd64,linux\/arm64/);
  });

  it('has its steps mirrored by scripts/docker-steps.sh', () => {
    for (const step of ['npm ci', 'npm run build', 'npm prune --omit=dev']) {
      expect(dockerfile).toContain(step);
      expect(steps).toContain(step);
    }
  });
});
