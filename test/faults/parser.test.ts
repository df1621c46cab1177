// Errors of Node's HTTP parser, before any route is found: headers or URLs too large, HTTP that
// is not HTTP, a request that never arrives whole. Each is a problem document like any other
// error, and the connection is closed after it.
import { connect } from 'node:net';
import t from 'tap';
import { buildApp } from '../../src/http/app.ts';
import { freshDatabase, testEngine } from '../helper.ts';

const { app } = await (async () => {
  const database = await freshDatabase(t);
  const { services } = await testEngine(t, database);
  const built = await buildApp({ database, services, requestTimeoutMs: 1000 });
  t.teardown(() => built.close());
  await built.listen({ port: 0, host: '127.0.0.1' });
  return { app: built };
})();
const { port } = app.server.address() as { port: number };

/** Sends raw bytes and reads everything the server answers until it closes the connection. */
function exchange(bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(bytes);
    });
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
  });
}

function problemOf(answer: string): { status: number; headers: string; body: Record<string, unknown> } {
  const [head = '', body = ''] = answer.split('\r\n\r\n');
  return { status: Number(head.split(' ')[1]), headers: head, body: JSON.parse(body) };
}

for (const [label, request, status, type] of [
  ['headers over 16 KiB', `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`, 431, 'headers-too-large'],
  ['a URL over 16 KiB', `GET /tools?${'q'.repeat(20 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431, 'headers-too-large'],
  ['a request line that is not HTTP', 'HELLO WORLD\r\n\r\n', 400, 'malformed-request'],
  ['a header without a colon', 'GET /health HTTP/1.1\r\nHost x\r\n\r\n', 400, 'malformed-request'],
  [
    'a bad chunked body',
    'POST /organizations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    400,
    'malformed-request',
  ],
  [
    'a request that never arrives whole',
    'POST /organizations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"na',
    408,
    'request-timeout',
  ],
] as const) {
  t.test(`${label}: ${status}, as a problem document`, async (t) => {
    const answer = await exchange(request);
    const problem = problemOf(answer);
    t.equal(problem.status, status);
    t.match(problem.headers, /\r\nContent-Type: application\/problem\+json; charset=utf-8\r\n/);
    t.match(problem.headers, /\r\nConnection: close(\r\n|$)/);
    t.match(problem.body, { type: `/problems/${type}`, title: String, status, detail: String, requestId: String });
    t.match(problem.headers, new RegExp(`\r\nX-Request-Id: ${problem.body.requestId}\r\n`), 'the request id, in the headers too');
  });
}
