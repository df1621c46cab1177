// A real HTTP server standing in for the external APIs that steps call. It records every request
// it receives, and its paths behave as named:
//   /echo/...           answers 200 with what it received: method, path, query, headers, body
//   /raw/...            answers 200 with its request target as it arrived (`{ url }`), encodings intact
//   /slow/:ms/...       waits that long, then echoes
//   /hang/...           never answers (until the client gives up)
//   /flaky/:n/...       answers 503 the first n times a given Idempotency-Key calls, then echoes
//   /once/...           answers 503 the first time the path is called, whoever calls, then echoes
//   /limited/:seconds   answers 429 with Retry-After the first time a key calls, then echoes
//   /unavailable/:seconds answers 503 with Retry-After the first time a key calls, then echoes
//   /limitAt/:n/:seconds answers 429 with Retry-After to the nth call of its path, whoever calls; echoes the others
//   /status/:code       answers with that status and a JSON problem
//   /failEcho/:code     answers with that status and what it received, as /echo does
//   /text               answers text/plain
//   /huge/:bytes        answers that many bytes of JSON
//   /oauth/token        the client-credentials grant, for the client `tolstoy` with secret `s3cret`
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface Received {
  method: string;
  path: string;
  query: Record<string, string | string[]>;
  headers: Record<string, string>;
  body: unknown;
  /** Whether the client went away before the answer was finished. */
  aborted: boolean;
  /** When it arrived (ms since the epoch). */
  at: number;
  /** When its answer ended or the client went away; undefined while it is in flight. */
  doneAt?: number;
}

export interface Target {
  url: string;
  received: Received[];
  /** Tokens handed out by /oauth/token. */
  tokensIssued: () => number;
  close(): Promise<void>;
}

export async function startTarget(): Promise<Target> {
  const received: Received[] = [];
  const calls = new Map<string, number>();
  let tokens = 0;
  const sockets = new Set<import('node:net').Socket>();
  const server: Server = createServer(async (request, response) => {
    // Arrived when its head did: reading its body may wait for a busy event loop.
    const at = Date.now();
    const url = new URL(request.url ?? '/', 'http://target');
    const text = await bodyOf(request);
    const entry: Received = {
      method: request.method ?? 'GET',
      path: url.pathname,
      query: queryOf(url),
      headers: Object.fromEntries(Object.entries(request.headers).map(([name, value]) => [name, String(value)])),
      body: parse(text, request.headers['content-type']),
      aborted: false,
      at,
    };
    received.push(entry);
    response.on('close', () => {
      if (!response.writableFinished) entry.aborted = true;
      entry.doneAt = Date.now();
    });
    const [, kind, arg] = url.pathname.split('/');
    const key = `${kind}:${entry.headers['idempotency-key'] ?? ''}:${url.pathname}`;
    const seen = (calls.get(key) ?? 0) + 1;
    calls.set(key, seen);
    const seenPath = (calls.get(url.pathname) ?? 0) + 1;
    calls.set(url.pathname, seenPath);
    const echo = (status = 200) =>
      json(response, status, { method: entry.method, path: entry.path, query: entry.query, headers: entry.headers, body: entry.body });
    switch (kind) {
      case 'echo':
        return echo();
      case 'raw':
        return json(response, 200, { url: request.url });
      case 'slow':
        return setTimeout(echo, Number(arg));
      case 'hang':
        return;
      case 'flaky':
        return seen <= Number(arg) ? json(response, 503, { error: 'unavailable', attempt: seen }) : echo();
      case 'once':
        return seenPath === 1 ? json(response, 503, { error: 'unavailable' }) : echo();
      case 'limited':
        if (seen === 1) {
          response.setHeader('retry-after', String(arg));
          return json(response, 429, { error: 'slow down' });
        }
        return echo();
      case 'unavailable':
        if (seen === 1) {
          response.setHeader('retry-after', String(arg));
          return json(response, 503, { error: 'come back later' });
        }
        return echo();
      case 'limitAt':
        if (seenPath === Number(arg)) {
          response.setHeader('retry-after', url.pathname.split('/')[3]!);
          return json(response, 429, { error: 'slow down' });
        }
        return echo();
      case 'status':
        return json(response, Number(arg), { error: `status ${arg}` });
      case 'failEcho':
        return echo(Number(arg));
      case 'text':
        response.writeHead(200, { 'content-type': 'text/plain' });
        return response.end('plain words');
      case 'huge':
        response.writeHead(200, { 'content-type': 'application/json' });
        return response.end(JSON.stringify({ padding: 'x'.repeat(Number(arg)) }));
      case 'oauth':
        return token(request, response, text, () => ++tokens);
      default:
        return json(response, 404, { error: 'no such path' });
    }
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    tokensIssued: () => tokens,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The most requests of `received` in flight at once. */
export function peakInFlight(received: Received[]): number {
  const events = received.flatMap((entry) => [
    [entry.at, 1],
    [entry.doneAt ?? Number.POSITIVE_INFINITY, -1],
  ]);
  // An answer that ended in the same millisecond another arrived ended first.
  events.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let current = 0;
  let peak = 0;
  for (const [, change] of events) {
    current += change!;
    peak = Math.max(peak, current);
  }
  return peak;
}

export /** The most calls of `received` that arrived within any `windowMs`. */
function busiestWindow(received: Received[], windowMs: number): number {
  const times = received.map((r) => r.at).sort((a, b) => a - b);
  let most = 0;
  for (let first = 0, last = 0; last < times.length; last++) {
    while (times[last]! - times[first]! >= windowMs) first++;
    most = Math.max(most, last - first + 1);
  }
  return most;
}

function token(request: IncomingMessage, response: ServerResponse, text: string, issue: () => number) {
  const expected = `Basic ${Buffer.from('tolstoy:s3cret').toString('base64')}`;
  const form = new URLSearchParams(text);
  if (request.headers.authorization !== expected || form.get('grant_type') !== 'client_credentials') return json(response, 401, { error: 'invalid_client' });
  return json(response, 200, { access_token: `token-${issue()}`, token_type: 'Bearer', expires_in: 3600, scope: form.get('scope') });
}

function json(response: ServerResponse, status: number, body: unknown) {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

function bodyOf(request: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    request.on('data', (chunk) => {
      text += chunk;
    });
    request.on('end', () => resolve(text));
    request.on('error', () => resolve(text));
  });
}

function parse(text: string, type: string | undefined): unknown {
  if (text === '') return null;
  if (type?.includes('json')) return JSON.parse(text);
  return text;
}

function queryOf(url: URL): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  for (const name of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(name);
    query[name] = values.length === 1 ? values[0]! : values;
  }
  return query;
}
