// The tenant of a request: X-Org-ID and X-User-ID, whose shape the contract has already checked
// (a malformed or missing one is a 400 before any handler runs).
import type { FastifyRequest } from 'fastify';
import type { Tenant } from '../domain/tenancy.ts';

export function tenantOf(request: FastifyRequest): Tenant {
  return { orgId: request.headers['x-org-id'] as string, userId: request.headers['x-user-id'] as string };
}
