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
    const member = await database.current.user.findUnique({ where: { orgId_id: { orgId, id: userId } }, select: { id: true } });
    // One answer for "no such organization" and "not a member", so that ids cannot be probed.
    if (!member) throw new ProblemError('forbidden', `User ${userId} is not a member of organization ${orgId}.`);
    request.tenant = { orgId, userId };
  };
}
