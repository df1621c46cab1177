// DBOS as the engine benchmark's peer: the same two flows as Tolstoy's, written as DBOS's docs
// recommend (bench/engine/notes.md cites the pages), served over node:http in a process of its own.
//   POST /sync   one step echoing the input; answered 200 with the workflow's output once it has finished.
//   POST /chain  three steps, each echoing what the one before received; answered 202 with the
//                workflow's id once DBOS.startWorkflow has durably recorded the start.
// Each step is a checkpointed DBOS step (DBOS.runStep) calling the echo server.
// Usage: node bench/engine/dbosApp.ts <port> <system database url> <echo url>
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { DBOS } from '@dbos-inc/dbos-sdk';

const [port, systemDatabaseUrl, echoUrl] = process.argv.slice(2) as [string, string, string];

interface Echoed {
  text: string;
}

async function echo(text: string): Promise<Echoed> {
  const response = await fetch(`${echoUrl}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }) });
  if (!response.ok) throw new Error(`the echo server answered ${response.status}`);
  return (await response.json()) as Echoed;
}

async function echoTheInput(input: Echoed): Promise<Echoed> {
  return DBOS.runStep(() => echo(input.text), { name: 'echo' });
}

async function threeSteps(input: Echoed): Promise<Echoed> {
  const one = await DBOS.runStep(() => echo(input.text), { name: 'one' });
  const two = await DBOS.runStep(() => echo(`${one.text}, twice`), { name: 'two' });
  return DBOS.runStep(() => echo(`${two.text}, thrice`), { name: 'three' });
}

// Registered before launch, as DBOS requires.
const syncWorkflow = DBOS.registerWorkflow(echoTheInput, { name: 'echoTheInput' });
const chainWorkflow = DBOS.registerWorkflow(threeSteps, { name: 'threeSteps' });

function body(request: IncomingMessage): Promise<Echoed> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (error) {
        reject(error);
      }
    });
    request.on('error', reject);
  });
}

function answer(response: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
  if (request.method !== 'POST') return answer(response, 405, { error: 'POST only' });
  const input = await body(request);
  if (typeof input?.text !== 'string') return answer(response, 400, { error: 'text must be a string' });
  if (request.url === '/sync') return answer(response, 200, await syncWorkflow({ text: input.text }));
  if (request.url === '/chain') {
    const started = await DBOS.startWorkflow(chainWorkflow)({ text: input.text });
    return answer(response, 202, { id: started.workflowID });
  }
  answer(response, 404, { error: 'no such route' });
}

DBOS.setConfig({
  name: 'tolstoy-bench',
  applicationVersion: '0.1.0',
  systemDatabaseUrl,
});
await DBOS.launch();

const server = createServer((request, response) => {
  handle(request, response).catch((error: Error) => {
    if (!response.headersSent) answer(response, 500, { error: error.message });
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(port), '127.0.0.1', () => console.log('ready'));

process.on('SIGTERM', () => {
  server.close();
  DBOS.shutdown().then(() => process.exit(0));
});
