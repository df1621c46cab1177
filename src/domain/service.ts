import type { Handler } from './contract.ts';
import { ProblemError } from './problems.ts';

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
