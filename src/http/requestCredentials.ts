// The credentials of a request, as src/access/callers.ts reads them: a bearer token from
// `Authorization`, and the tenant headers.
import type { FastifyRequest } from 'fastify';
import type { Credentials } from '../access/callers.ts';

export function credentialsOf(request: FastifyRequest): Credentials {
  const { authorization } = request.headers;
  return {
    bearer: authorization === undefined ? undefined : bearerOf(authorization),
    orgId: request.headers['x-org-id'] as string | undefined,
    userId: request.headers['x-user-id'] as string | undefined,
  };
}

/** The token of `Bearer <token>` (RFC 6750; the scheme is case-insensitive), or null for anything else. */
function bearerOf(authorization: string): string | null {
  const match = /^Bearer +([\x21-\x7e]+) *$/i.exec(authorization);
  return match?.[1] ?? null;
}

/** The challenge of a 401 (RFC 6750): `error="invalid_token"` when credentials were sent. */
export function challengeOf(request: FastifyRequest): string {
  return request.headers.authorization === undefined ? 'Bearer realm="tolstoy"' : 'Bearer realm="tolstoy", error="invalid_token"';
}
