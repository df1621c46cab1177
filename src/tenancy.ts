// Outside /organizations every call acts inside one organization, for one of its members.
// The headers' shape is checked by the contract (a malformed or missing one is a 400);
// here we check that the user really is a member of the organization (otherwise 403).
import type { FastifyRequest } from 'fastify';
import type { DatabaseConnection } from './db/client.ts';
import { ProblemError } from './problems.ts';

export interface Tenant {
  orgId: string;
  userId: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    tenant: Tenant | null;
  }
}

export function tenantResolver(database: DatabaseConnection) {
  return async function resolveTenant(request: FastifyRequest): Promise<void> {
    const orgId = request.headers['x-org-id'] as string;
    const userId = request.headers['x-user-id'] as string;
    // Every request asks this, so it is the cheapest query Prisma Client can run: plain SQL.
    const members = await database.current.$queryRaw<unknown[]>`SELECT 1 FROM users WHERE org_id = ${orgId}::uuid AND id = ${userId}::uuid`;
    // One answer for "no such organization" and "not a member", so that ids cannot be probed.
    if (members.length === 0) throw new ProblemError('forbidden', `User ${userId} is not a member of organization ${orgId}.`);
    request.tenant = { orgId, userId };
  };
}
