import type { Handler } from '../contract/operations.ts';

export const getHealth: Handler<'getHealth'> = async () => ({ status: 'ok' });

// A database that cannot answer fails the query; the error handler makes that a 503.
export const getReadiness: Handler<'getReadiness'> = async (_input, { db }) => {
  await db.$queryRaw`SELECT 1`;
  return { status: 'ok' };
};
