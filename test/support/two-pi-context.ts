import type { ClassifyAction, ClassifyContext } from '../../src/domain/classify.js';

/** The runbook's two Pis as the classifier sees them, with the actions a test wants offered. */
export function twoPiContext(actions: readonly ClassifyAction[]): ClassifyContext {
  return {
    vipAddress: '10.86.0.18',
    redisHitRatioThreshold: 0.5,
    nodes: [
      { name: 'pi-a', roles: ['frontend'], services: ['nginx', 'keepalived'], holdsVip: true },
      {
        name: 'pi-b',
        roles: ['backend', 'spare'],
        services: ['redis-server', 'nginx', 'keepalived'],
        holdsVip: true,
      },
    ],
    actions,
  };
}
