import type { Handler, Output } from '../contract/handlers.ts';
import { ProblemError } from '../contract/problems.ts';
import { loadContract } from '../http/spec.ts';

const LINKS = { docs: '/docs', openapi: '/openapi.json', problems: '/problems', health: '/health', ready: '/ready' };
let index: Output<'getIndex'> | undefined;

/** Where a newcomer starts: the API as its contract names it, and links to everything else. */
export const getIndex: Handler<'getIndex'> = async () => {
  // Read once, on the first visit: the contract is the one place that names and versions the API.
  index ??= (({ title, version }) => ({ name: title, version, links: LINKS }))(loadContract().document.info);
  return index;
};

export const getHealth: Handler<'getHealth'> = async () => ({ status: 'ok' });

/** How long readiness waits for the database: a load balancer must hear "not ready" quickly. */
export const READINESS_TIMEOUT_MS = 1000;

// A database that cannot answer fails the query, and the error handler makes that a 503; one
// that stalls is answered for once the wait runs out (the query itself is bounded elsewhere).
export const getReadiness: Handler<'getReadiness'> = async (_input, { db }) => {
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new ProblemError('service-unavailable', `The database did not answer within ${READINESS_TIMEOUT_MS} ms.`, { retryAfterSeconds: 1 })),
      READINESS_TIMEOUT_MS,
    );
  });
  try {
    await Promise.race([db.$queryRaw`SELECT 1`, stalled]);
  } finally {
    clearTimeout(timer);
  }
  return { status: 'ok' };
};
