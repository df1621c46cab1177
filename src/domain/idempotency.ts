// Idempotency-Key (https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/):
// the first answer to a request made with a key is stored in the same transaction as what the
// request did, and replayed for IDEMPOTENCY_HOURS to any request with the same key in the same
// organization; the same key with a different body is refused (422).
import { createHash } from 'node:crypto';
import type { Database } from '../db/client.ts';
import { brokenUniqueConstraint } from '../db/errors.ts';
import { ProblemError } from './problems.ts';
import type { Transaction } from './runs.ts';

export const IDEMPOTENCY_HOURS = 24;

export interface Idempotent<Body> {
  status: number;
  body: Body;
  location?: string;
  /** Whether this replays the answer to an earlier request. */
  replayed: boolean;
}

export interface IdempotencyScope {
  orgId: string;
  key: string;
  operation: string;
  /** The request, whose body and path parameters must be the same for a replay. */
  request: unknown;
}

/** Runs `act` once per key: later requests with the key get its first answer back. */
export async function idempotently<Body>(
  db: Database,
  { orgId, key, operation, request }: IdempotencyScope,
  act: (tx: Transaction) => Promise<{ status: number; body: Body; location?: string }>,
): Promise<Idempotent<Body>> {
  const requestHash = createHash('sha256')
    .update(`${operation} ${canonical(request)}`)
    .digest('hex');
  const since = new Date(Date.now() - IDEMPOTENCY_HOURS * 3600_000);
  // A second pass only follows a request with the same key that committed first.
  for (let pass = 0; ; pass++) {
    const stored = await db.idempotencyKey.findFirst({ where: { orgId, key, createdAt: { gt: since } } });
    if (stored) {
      if (stored.requestHash !== requestHash) {
        throw new ProblemError('unprocessable-content', `The Idempotency-Key ${key} was used for a different request; use a new key for a new request.`);
      }
      return { status: stored.status, body: JSON.parse(stored.body) as Body, location: stored.location ?? undefined, replayed: true };
    }
    try {
      return await db.$transaction(async (tx) => {
        await tx.idempotencyKey.deleteMany({ where: { orgId, key, createdAt: { lte: since } } });
        const answer = await act(tx);
        const data = { orgId, key, operation, requestHash, status: answer.status, body: JSON.stringify(answer.body), location: answer.location ?? null };
        await tx.idempotencyKey.create({ data });
        return { ...answer, replayed: false };
      });
    } catch (error) {
      if (pass > 0 || brokenUniqueConstraint(error) !== 'idempotency_keys_pkey') throw error;
    }
  }
}

/** Forgets keys older than IDEMPOTENCY_HOURS. */
export async function forgetExpiredKeys(db: Database): Promise<number> {
  const { count } = await db.idempotencyKey.deleteMany({ where: { createdAt: { lte: new Date(Date.now() - IDEMPOTENCY_HOURS * 3600_000) } } });
  return count;
}

// The same request, whatever the order of its keys.
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const names = Object.keys(value).sort();
    return `{${names.map((name) => `${JSON.stringify(name)}:${canonical((value as Record<string, unknown>)[name])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
