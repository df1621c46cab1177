import type { Handler } from '../contract/operations.ts';
import { ProblemError } from '../problems.ts';

export const getHealth: Handler<'getHealth'> = async () => ({ status: 'ok' });

export const getReadiness: Handler<'getReadiness'> = async (_input, { db }) => {
  try {
    await db.$queryRaw`SELECT 1`;
  } catch {
    throw new ProblemError('service-unavailable', 'The database cannot be reached.', undefined, { 'retry-after': '1' });
  }
  return { status: 'ok' };
};
