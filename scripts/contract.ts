// `npm run test:contract`: schemathesis fuzzes every operation of openapi/openapi.yaml against
// the real server on a throwaway PostgreSQL, with a real tenant. Extra arguments go to
// schemathesis (`npm run test:contract -- --max-examples 500 --seed 7`). The JUnit report is
// written to reports/contract/.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { DatabaseConnection } from '../src/db/client.ts';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { applyMigrations } from '../src/db/migrations.ts';
import { Keyring } from '../src/domain/credentials.ts';
import { startEngine } from '../src/engine/engine.ts';
import { buildApp } from '../src/http/app.ts';
import { pythonTools } from './python.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CONTRACT_REPORT_DIR = join(ROOT, 'reports', 'contract');

export interface ContractResult {
  code: number;
  passed: number;
  failed: number;
}

export async function runContract(args: string[], databaseUrl?: string): Promise<ContractResult> {
  const bin = await pythonTools();
  await rm(CONTRACT_REPORT_DIR, { recursive: true, force: true });
  const embedded = databaseUrl ? undefined : await startEmbeddedPostgres({ dataDir: join(tmpdir(), `tolstoy-contract-${randomUUID()}`), ephemeral: true });
  const url = databaseUrl ?? embedded!.url;
  await applyMigrations(url);
  const database = new DatabaseConnection(url);
  const keyring = new Keyring(randomBytes(32));
  // No worker: runs stay queued, so the stateful phase can cancel and then retry them, and the
  // fuzzer's runs call nobody (the engine has tests of its own).
  const settings = { worker: false, concurrency: 10, orgConcurrency: 10, allowPrivateTargets: false, responseLimitBytes: 1024 * 1024 };
  const engine = await startEngine({ database, directUrl: url, keyring, settings, log: pino({ level: 'silent' }) });
  const app = await buildApp({ database, services: { keyring, runs: engine.runs } });
  const answered = countSuccesses(app);
  try {
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const tenant = await createTenant(base);
    console.log(`Contract run against ${base} as member ${tenant.userId} of organization ${tenant.orgId}`);
    const code = await schemathesis(
      bin,
      [
        'run',
        'openapi/openapi.yaml',
        '--url',
        base,
        '--checks',
        'all',
        '--phases',
        'examples,coverage,fuzzing,stateful',
        '--report',
        'junit',
        '--report-dir',
        CONTRACT_REPORT_DIR,
        ...args,
      ],
      { TOLSTOY_ORG_ID: tenant.orgId, TOLSTOY_USER_ID: tenant.userId },
    );
    const report = await latestReport();
    console.log(`JUnit report: ${report}`);
    const phases = args[args.indexOf('--phases') + 1];
    const unchained = args.includes('--phases') && !phases?.includes('stateful') ? 0 : reportChains(answered);
    const { passed, failed } = await junitCounts(report);
    return { code: Math.max(code, unchained), passed, failed: failed + unchained };
  } finally {
    await app.close();
    await engine.stop(1000);
    await database.close();
    await embedded?.stop();
  }
}

// Which operations answered 2xx, by operationId: an operation on one resource by id can only
// succeed with an id that an earlier create returned, that is, through a chain of links.
function countSuccesses(app: FastifyInstance): Map<string, number> {
  const answered = new Map<string, number>();
  app.addHook('onResponse', async (request, reply) => {
    const operationId = (request.routeOptions.schema as { operationId?: string } | undefined)?.operationId;
    if (operationId && reply.statusCode < 300) answered.set(operationId, (answered.get(operationId) ?? 0) + 1);
  });
  return answered;
}

/** Prints, per resource, how often its read, update and delete by id succeeded; 1 when any never did. */
function reportChains(answered: Map<string, number>): number {
  const chains: [string, string[]][] = [
    ...['Organization', 'User', 'Tool', 'Action', 'Flow', 'ExecutionLog'].map((resource): [string, string[]] => [
      resource,
      ['create', 'get', 'update', 'delete'].map((verb) => `${verb}${resource}`),
    ]),
    ['FlowVersion', ['createFlow', 'listFlowVersions', 'getFlowVersion']],
    ['Execution', ['startExecution', 'getExecution', 'cancelExecution', 'retryExecution']],
  ];
  console.log('Stateful chains (successful calls by id, reached only through links):');
  let missing = 0;
  for (const [resource, operationIds] of chains) {
    const counts = operationIds.map((operationId) => `${operationId} ${answered.get(operationId) ?? 0}`);
    console.log(`  ${resource.padEnd(13)} ${counts.join(', ')}`);
    if (operationIds.some((operationId) => (answered.get(operationId) ?? 0) === 0)) missing++;
  }
  if (missing > 0) console.log(`${missing} resource(s) were never chained through all their operations.`);
  return missing > 0 ? 1 : 0;
}

async function junitCounts(report: string): Promise<{ passed: number; failed: number }> {
  const xml = await readFile(report, 'utf8').catch(() => '');
  const attribute = (name: string) => Number(xml.match(new RegExp(`<testsuites[^>]* ${name}="(\\d+)"`))?.[1] ?? 0);
  const failed = attribute('failures') + attribute('errors');
  return { passed: attribute('tests') - failed - attribute('skipped'), failed: xml ? failed : 1 };
}

async function latestReport(): Promise<string> {
  const reports = (await readdir(CONTRACT_REPORT_DIR)).filter((name) => name.endsWith('.xml')).sort();
  return join(CONTRACT_REPORT_DIR, reports.at(-1) ?? '(none)');
}

async function createTenant(base: string): Promise<{ orgId: string; userId: string }> {
  const response = await fetch(`${base}/organizations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Contract Tenant', owner: { email: 'owner@contract.test', name: 'Contract Owner' } }),
  });
  const body = (await response.json()) as { id: string; owner: { id: string } };
  return { orgId: body.id, userId: body.owner.id };
}

function schemathesis(bin: string, args: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(join(bin, 'st'), args, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...env, PYTHONUNBUFFERED: '1' } });
    child.on('close', (code) => resolve(code ?? 1));
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exit((await runContract(process.argv.slice(2))).code);
}
