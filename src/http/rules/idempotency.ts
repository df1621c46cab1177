// Idempotency-Key (https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/)
// on every POST of a tenant: the first successful answer to a request made with a key is stored
// in the same transaction as what the request did, and replayed (status, headers, body) for
// IDEMPOTENCY_HOURS to the same request with the same key in the same organization. The same
// key with another request (another body, path or member) is refused (422); while the first
// request is still being handled, a second one is refused too (409), and may be retried. A
// request that failed stored nothing: it changed nothing, and the key may be used again.
// A request is kept as its keyed digest (Keyring.digest), never as its text nor a plain hash of
// it: a request may hold a tool's credentials, and a plain hash would let whoever reads the table
// check guesses of them. Digests are keyed by the current encryption key: after a rotation, a
// request repeated with a key used before it is refused as a different one.

import { Answer, type ServiceContext, type TenantContext } from '../../contract/handlers.ts';
import { conflict, ProblemError } from '../../contract/problems.ts';
import type { Database, Transaction } from '../../db/client.ts';
import { canonical, transactional } from './preconditions.ts';

export const IDEMPOTENCY_HOURS = 24;

/** A first answer, or one replayed. */
export interface Idempotent<Body> {
  /** Undefined for the operation's usual success status. */
  status: number | undefined;
  body: Body;
  headers: Record<string, string>;
  replayed: boolean;
}

export interface IdempotencyScope {
  orgId: string;
  key: string;
  operation: string;
  /** The request, which must be the same for a replay: who sent it, its path and its body. */
  request: unknown;
}

type FirstAnswer<Body> = Omit<Idempotent<Body>, 'replayed'>;

/** Runs `act` once per key: later requests with the key get its first answer back. */
export async function idempotently<Body>(
  { db, keyring }: Pick<ServiceContext, 'db' | 'keyring'>,
  { orgId, key, operation, request }: IdempotencyScope,
  act: (tx: Transaction) => Promise<FirstAnswer<Body>>,
): Promise<Idempotent<Body>> {
  const requestHash = keyring.digest(`${operation} ${canonical(request)}`);
  const since = new Date(Date.now() - IDEMPOTENCY_HOURS * 3600_000);
  const stored = (client: Transaction) => client.idempotencyKey.findFirst({ where: { orgId, key, createdAt: { gt: since } } });
  const earlier = await stored(db);
  if (earlier) return replay(earlier, requestHash, key);
  return db.$transaction(async (tx) => {
    // Held until this transaction ends, however it ends: a request with the same key meanwhile is told to wait.
    const [lock] = await tx.$queryRaw<{ locked: boolean }[]>`SELECT pg_try_advisory_xact_lock(hashtextextended(${`${orgId} ${key}`}, 0)) AS locked`;
    if (!lock?.locked) throw conflict(`A request with the Idempotency-Key ${key} is still being handled; retry once it has finished.`);
    // The first request may have committed between the look above and the lock.
    const committed = await stored(tx);
    if (committed) return replay(committed, requestHash, key);
    await tx.idempotencyKey.deleteMany({ where: { orgId, key, createdAt: { lte: since } } });
    const answer = await act(tx);
    const data = {
      orgId,
      key,
      operation,
      requestHash,
      status: answer.status ?? null,
      body: JSON.stringify(answer.body),
      headers: JSON.stringify(answer.headers),
    };
    await tx.idempotencyKey.create({ data });
    return { ...answer, replayed: false };
  });
}

interface StoredAnswer {
  requestHash: string;
  status: number | null;
  body: string;
  headers: string;
}

function replay<Body>(stored: StoredAnswer, requestHash: string, key: string): Idempotent<Body> {
  if (stored.requestHash !== requestHash) {
    throw new ProblemError('unprocessable-content', `The Idempotency-Key ${key} was used for a different request; use a new key for a new request.`);
  }
  return { status: stored.status ?? undefined, body: JSON.parse(stored.body) as Body, headers: JSON.parse(stored.headers), replayed: true };
}

interface PostInput {
  params?: unknown;
  headers: { 'idempotency-key'?: string };
  body?: unknown;
}

type TenantHandler<In extends PostInput, Out> = (input: In, context: TenantContext) => Promise<Out>;

/**
 * The handler of a POST, made idempotent. What the answer holds is kept for replays, but for an
 * answer whose body is a secret shown once (`secret`): only its id is kept, and a replay is
 * refused with a 409 that names what the first request made. `kept` takes out of the answer what
 * must not be kept (a secret inside it), and a replay answers the rest.
 */
export function idempotent<In extends PostInput, Out>(
  operation: string,
  handler: TenantHandler<In, Out>,
  secret?: (id: string) => string,
  kept: (body: unknown) => unknown = (body) => body,
): TenantHandler<In, Out> {
  return async (input, context) => {
    const key = input.headers['idempotency-key'];
    if (key === undefined) return handler(input, context);
    const { tenant } = context;
    let told = () => {};
    const scope = { orgId: tenant.orgId, key, operation, request: { userId: tenant.userId, params: input.params ?? {}, body: input.body ?? null } };
    let made: Answer<unknown> | undefined;
    const first = await idempotently<unknown>(context, scope, async (tx) => {
      const held = transactional(tx, context);
      told = held.told;
      const result = await handler(input, held.context);
      made = result instanceof Answer ? result : new Answer(undefined, result);
      return { status: made.status, body: secret ? { id: (made.body as { id: string }).id } : kept(made.body), headers: made.headers };
    });
    told();
    if (!first.replayed && made) return made as Out;
    if (secret) throw conflict(secret((first.body as { id: string }).id));
    return new Answer(first.status, first.body, { ...first.headers, 'idempotent-replayed': 'true' }) as Out;
  };
}

/** Forgets keys older than IDEMPOTENCY_HOURS, `batch` at a time, each batch a short statement of its own. */
export async function forgetExpiredKeys(db: Database, now = new Date(), batch = 1000): Promise<number> {
  const expired = new Date(now.getTime() - IDEMPOTENCY_HOURS * 3600_000);
  let total = 0;
  for (;;) {
    const forgotten = await db.$executeRaw`
      DELETE FROM idempotency_keys WHERE (org_id, key) IN (
        SELECT org_id, key FROM idempotency_keys WHERE created_at <= ${expired} LIMIT ${batch})`;
    total += forgotten;
    if (forgotten < batch) return total;
  }
}
