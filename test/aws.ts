// Real AWS Secrets Manager endpoints for the tests: moto in server mode (installed into .venv by
// scripts/python.ts), and, for what moto cannot emulate (access denied, rejected credentials,
// throttling), a small HTTP server that answers with the exact responses AWS sends, so that the
// SDK's own error handling runs on them.
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { CreateSecretCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { pythonTools } from '../scripts/python.ts';
import { freePort } from '../src/db/embedded.ts';

export const REGION = 'us-east-1';
export const TEST_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' };

interface Test {
  teardown(fn: () => unknown): void;
}

export interface Moto {
  endpoint: string;
  putSecret(name: string, value: string): Promise<void>;
}

export async function startMoto(t: Test): Promise<Moto> {
  const bin = await pythonTools();
  const port = await freePort();
  const child = spawn(join(bin, 'moto_server'), ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  t.teardown(() => child.kill());
  const endpoint = `http://127.0.0.1:${port}`;
  for (
    let i = 0;
    i < 100 &&
    !(await fetch(`${endpoint}/moto-api/`)
      .then((r) => r.ok)
      .catch(() => false));
    i++
  )
    await new Promise((r) => setTimeout(r, 100));
  const client = new SecretsManagerClient({ region: REGION, endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  t.teardown(() => client.destroy());
  const created = new Set<string>();
  return {
    endpoint,
    async putSecret(name, value) {
      if (created.has(name)) await client.send(new PutSecretValueCommand({ SecretId: name, SecretString: value }));
      else await client.send(new CreateSecretCommand({ Name: name, SecretString: value }));
      created.add(name);
    },
  };
}

export interface FakeAws {
  endpoint: string;
  requests: () => number;
}

/** An endpoint that answers the Secrets Manager JSON protocol with `answer`, or forwards to `upstream`. */
export async function fakeAws(
  t: Test,
  answer: (request: number) => { status: number; type: string; message: string } | 'forward' | 'hang',
  upstream?: string,
): Promise<FakeAws> {
  let count = 0;
  const server: Server = createServer(async (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const reply = answer(++count);
    if (reply === 'hang') return;
    if (reply === 'forward') {
      const forwarded = await fetch(`${upstream}${request.url}`, {
        method: request.method,
        headers: request.headers as Record<string, string>,
        body: Buffer.concat(chunks),
      });
      response.writeHead(forwarded.status, Object.fromEntries(forwarded.headers)).end(Buffer.from(await forwarded.arrayBuffer()));
      return;
    }
    response
      .writeHead(reply.status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': `req-${count}`, 'x-amzn-errortype': `${reply.type}:` })
      .end(JSON.stringify({ __type: reply.type, Message: reply.message }));
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return { endpoint: `http://127.0.0.1:${port}`, requests: () => count };
}
