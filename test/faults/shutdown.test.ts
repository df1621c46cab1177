// SIGTERM while clients hold connections: kept-alive idle ones, ones with a request in flight,
// and ones stalled in the middle of an upload. The process answers every request that arrived
// whole, closes every connection by the deadline (SHUTDOWN_TIMEOUT_MS), and exits.
import { connect, type Socket } from 'node:net';
import t from 'tap';
import { freshDatabaseUrl } from '../helper.ts';
import { type ServerProcess, startServer } from '../process.ts';

interface Connection {
  socket: Socket;
  received: () => string;
  closed: Promise<void>;
}

async function open(server: ServerProcess): Promise<Connection> {
  const socket = connect(Number(new URL(server.base).port), '127.0.0.1');
  let received = '';
  socket.on('data', (chunk) => (received += chunk));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await new Promise((resolve) => socket.on('connect', resolve));
  return { socket, received: () => received, closed };
}

const post = (body: string) => `POST /organizations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function exitTime(server: ServerProcess, since: number): Promise<{ code: number | null; ms: number }> {
  const code = await server.exited;
  return { code, ms: Date.now() - since };
}

t.test('an idle kept-alive client does not hold the process up', async (t) => {
  const server = await startServer({ DATABASE_URL: await freshDatabaseUrl(t), SHUTDOWN_TIMEOUT_MS: '20000' });
  const client = await open(server);
  client.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
  await sleep(200);
  t.match(client.received(), /^HTTP\/1\.1 200 OK/);
  t.match(client.received(), /keep-alive/i, 'the connection is kept alive');
  const since = Date.now();
  server.process.kill('SIGTERM');
  await client.closed;
  const { code, ms } = await exitTime(server, since);
  t.equal(code, 0);
  t.ok(ms < 5000, `exits at once, not after the keep-alive timeout or the deadline (${ms} ms)`);
});

t.test('a request in flight on a kept-alive connection is answered with Connection: close, and the connection closed', async (t) => {
  const server = await startServer({ DATABASE_URL: await freshDatabaseUrl(t), SHUTDOWN_TIMEOUT_MS: '20000' });
  const client = await open(server);
  const body = JSON.stringify({ name: 'In flight' });
  client.socket.write(post(body) + body.slice(0, 5));
  await sleep(200);
  const since = Date.now();
  server.process.kill('SIGTERM');
  await sleep(300);
  t.equal(server.process.exitCode, null, 'the server waits for the request');
  client.socket.write(body.slice(5));
  await client.closed;
  t.match(client.received(), /^HTTP\/1\.1 201 Created/);
  t.match(client.received(), /\r\nconnection: close\r\n/i, 'the answer tells the client to close');
  const { code, ms } = await exitTime(server, since);
  t.equal(code, 0);
  t.ok(ms < 5000, `exits once it has answered (${ms} ms)`);
});

t.test('a client stalled mid-upload is cut off at the deadline; a whole request beside it is answered', async (t) => {
  const deadline = 1500;
  const server = await startServer({ DATABASE_URL: await freshDatabaseUrl(t), SHUTDOWN_TIMEOUT_MS: String(deadline) });
  const stalled = await open(server);
  const body = JSON.stringify({ name: 'Never finished' });
  stalled.socket.write(post(body) + body.slice(0, 3));
  const finishing = await open(server);
  const whole = JSON.stringify({ name: 'Finished' });
  finishing.socket.write(post(whole) + whole.slice(0, 3));
  await sleep(200);
  const since = Date.now();
  server.process.kill('SIGTERM');
  await sleep(300);
  finishing.socket.write(whole.slice(3));
  await finishing.closed;
  t.match(finishing.received(), /^HTTP\/1\.1 201 Created/, 'the request that arrived whole is answered');
  await stalled.closed;
  t.equal(stalled.received(), '', 'the stalled upload gets no answer: it never arrived');
  const { code, ms } = await exitTime(server, since);
  t.equal(code, 0);
  t.ok(ms >= deadline - 100 && ms < deadline + 3000, `exits at the deadline (${ms} ms)`);
});
