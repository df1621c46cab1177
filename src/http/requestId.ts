// Every request has an id: the caller's X-Request-Id when it is well-formed (1 to 200 visible
// ASCII characters, safe to log and echo), a new UUID otherwise.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

const WELL_FORMED = /^[\x21-\x7E]{1,200}$/;

export function requestIdOf(request: IncomingMessage): string {
  const sent = request.headers['x-request-id'];
  return typeof sent === 'string' && WELL_FORMED.test(sent) ? sent : randomUUID();
}
