// Where a tool's requests may go and what they may carry, so that whoever writes an action cannot
// send the tool's credentials anywhere but under the tool's base URL: the rules are checked when
// an action is written (src/resources/actions.ts) and again on every request (src/engine/step.ts),
// for actions stored before a rule existed and tools whose credentials changed since.
import type { Credentials } from '../crypto/keyring.ts';
import type { AuthType } from '../resources/toolCredentials.ts';

// Headers that choose the host, the connection or the framing of the request: a Host sends the
// credentials to another virtual host of the same address, the others open the door to request
// smuggling or to a proxy's credentials (RFC 9110 §7.2, §7.6.1; RFC 9112 §6).
const ROUTING = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'content-length', 'expect']);

/** Whether a header routes or frames the request rather than speaking to the API. */
export function routesRequest(name: string): boolean {
  const lower = name.toLowerCase();
  return ROUTING.has(lower) || lower.startsWith('proxy-');
}

/** The header (lower-cased) that carries a tool's credentials, if they go in one. */
export function credentialHeader(authType: AuthType, credentials: Credentials | null): string | undefined {
  if (authType === 'bearer' || authType === 'basic' || authType === 'oauth2') return 'authorization';
  if (credentials !== null && 'value' in credentials && credentials.in !== 'query') return credentials.name.toLowerCase();
  return undefined;
}

/** What is wrong with an action's header for its tool, in words, or undefined. */
export function refusedHeader(name: string, credentialsHeader: string | undefined): string | undefined {
  if (routesRequest(name)) return 'routes or frames the request (Host, Connection, Transfer-Encoding, Content-Length, Proxy-* and the like are set by Tolstoy)';
  if (name.toLowerCase() === credentialsHeader) return "carries the tool's credentials, which only the tool's owner sets";
  return undefined;
}

// Servers that decode a path more than once exist; three rounds unmask `%25252e` and less.
const DECODINGS = 3;

/**
 * Whether a path segment is, or decodes to, a `.` or `..` step (with `/` or `\` decoded inside it),
 * or one with path parameters (`..;x`), which Tomcat and Spring read as the step itself.
 */
export function climbs(segment: string): boolean {
  let text = segment;
  for (let round = 0; round <= DECODINGS; round++) {
    if (text.split(/[/\\]/).some((part) => /^\.\.?(;|$)/.test(part))) return true;
    const decoded = decodedOnce(text);
    if (decoded === text) return false;
    text = decoded;
  }
  return false;
}

function decodedOnce(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Whether `path` (an endpoint with its placeholders filled in, percent-encoded) appended to
 * `baseUrl` stays under it: no segment climbs (see climbs), before the URL parser would quietly
 * resolve it, and the URL has the base's origin and a path that is the base's or below it.
 */
export function staysUnder(baseUrl: string, path: string): boolean {
  if (path.split('/').some(climbs)) return false;
  const base = new URL(baseUrl);
  const target = new URL(`${baseUrl.replace(/\/+$/, '')}${path}`);
  if (target.origin !== base.origin || target.username !== '' || target.password !== '') return false;
  const prefix = base.pathname.replace(/\/+$/, '');
  return target.pathname === prefix || target.pathname.startsWith(`${prefix}/`);
}
