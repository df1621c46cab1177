// Outside /organizations every call acts inside one organization, for one of its members. The
// headers' shape is checked by the contract (a malformed or missing one is a 400); membership is
// checked here, on every request, against the database (otherwise 403):
// - a write first asks whether the user is a member, then acts;
// - a read asks for the rows of the organization *while the user is a member of it*, in the same
//   query (Reader.scope), and only when that finds nothing asks about membership, to tell 403 from
//   404 or from an empty list. A read so costs one query instead of two.
import type { FastifyRequest } from 'fastify';
import type { Database } from './db/client.ts';
import { ProblemError } from './problems.ts';

export interface Tenant {
  orgId: string;
  userId: string;
}

/** The caller of a read, not yet known to be a member: it can only look through `scope`. */
export interface Reader {
  /** A Prisma filter: rows of the caller's organization, while the caller is one of its members. */
  readonly scope: { orgId: string; organization: { users: { some: { id: string } } } };
  /** The rows; when there are none, first makes sure the caller is a member (403 otherwise). */
  list<Row>(rows: Row[]): Promise<Row[]>;
  /** The row; when there is none, answers 403 to a non-member and `missing` (a 404) to a member. */
  one<Row>(row: Row | null, missing: ProblemError): Promise<Row>;
}

declare module 'fastify' {
  interface FastifyRequest {
    tenant: Tenant | null;
  }
}

function tenantOf(request: FastifyRequest): Tenant {
  return { orgId: request.headers['x-org-id'] as string, userId: request.headers['x-user-id'] as string };
}

async function assertMember(db: Database, { orgId, userId }: Tenant): Promise<void> {
  const members = await db.$queryRaw<unknown[]>`SELECT 1 FROM users WHERE org_id = ${orgId}::uuid AND id = ${userId}::uuid`;
  // One answer for "no such organization" and "not a member", so that ids cannot be probed.
  if (members.length === 0) throw new ProblemError('forbidden', `User ${userId} is not a member of organization ${orgId}.`);
}

/** The preHandler of writes: the caller must be a member before anything is changed. */
export function memberResolver(current: () => Database) {
  return async function resolveMember(request: FastifyRequest): Promise<void> {
    const tenant = tenantOf(request);
    await assertMember(current(), tenant);
    request.tenant = tenant;
  };
}

export function readerOf(request: FastifyRequest, db: Database): Reader {
  const tenant = tenantOf(request);
  return {
    scope: { orgId: tenant.orgId, organization: { users: { some: { id: tenant.userId } } } },
    async list(rows) {
      if (rows.length === 0) await assertMember(db, tenant);
      return rows;
    },
    async one(row, missing) {
      if (row !== null) return row;
      await assertMember(db, tenant);
      throw missing;
    },
  };
}
