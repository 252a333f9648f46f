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

  it('has its steps mirrored by scripts/docker-steps.sh', () => {
    for (const step of ['npm ci', 'npm run build', 'npm prune --omit=dev']) {
      expect(dockerfile).toContain(step);
      expect(steps).toContain(step);
    }
  });
});
