// The external API the flows call in the engine benchmark: answers every request with the JSON
// body it received, and counts requests by their Idempotency-Key (Tolstoy sends
// `<execution>:<step>`), so that a step sent twice shows. GET /__stats answers the counts.
// Usage: node bench/engine/echo.ts <port>
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
const byKey = new Map<string, number>();
let calls = 0;

const server = createServer((request, response) => {
  if (request.url === '/__stats') {
    const resent = [...byKey.values()].filter((count) => count > 1).length;
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ calls, keys: byKey.size, resent }));
    return;
  }
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    calls++;
    const key = request.headers['idempotency-key'];
    if (typeof key === 'string') byKey.set(key, (byKey.get(key) ?? 0) + 1);
    const body = chunks.length > 0 ? Buffer.concat(chunks) : Buffer.from('{}');
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => console.log('ready'));
