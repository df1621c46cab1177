// `npm run test:contract`: schemathesis fuzzes every operation of openapi/openapi.yaml against
// the real server on a throwaway PostgreSQL, with a real tenant, once for each way of
// authenticating: tenant headers (development) and API keys (production). Extra arguments go to
// schemathesis (`npm run test:contract -- --max-examples 500 --seed 7`); TOLSTOY_AUTH=keys (or
// headers) runs one mode only. The JUnit reports are written to reports/contract/.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { AUTH_MODES, type AuthMode, EVALUATION, EVENTS } from '../src/config/settings.ts';
import { Keyring } from '../src/crypto/keyring.ts';
import { DatabaseConnection } from '../src/db/client.ts';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { applyMigrations } from '../src/db/migrations.ts';
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

export async function runContract(args: string[], databaseUrl?: string, mode: AuthMode = 'headers'): Promise<ContractResult> {
  const bin = await pythonTools();
  const reportDir = join(CONTRACT_REPORT_DIR, mode);
  await rm(reportDir, { recursive: true, force: true });
  const embedded = databaseUrl ? undefined : await startEmbeddedPostgres({ dataDir: join(tmpdir(), `tolstoy-contract-${randomUUID()}`), ephemeral: true });
  const url = databaseUrl ?? embedded!.url;
  await applyMigrations(url);
  const database = new DatabaseConnection(url);
  const keyring = new Keyring(randomBytes(32));
  // No worker: runs stay queued, so the stateful phase can cancel and then retry them, and the
  // fuzzer's runs call nobody (the engine has tests of its own). The thousands of runs the
  // earlier phases start stay queued too, so the queue bound (test/security/fairness.test.ts)
  // is lifted: under it, every start and retry of the stateful phase would answer 429.
  const settings = {
    worker: false,
    concurrency: 10,
    orgConcurrency: 10,
    allowPrivateTargets: false,
    responseLimitBytes: 1024 * 1024,
    executionBudgetBytes: 8 * 1024 * 1024,
    resumeLimit: 3,
    orgQueueLimit: 10_000_000,
    runTreeLimit: 10_000,
    evaluation: EVALUATION,
    events: EVENTS,
  };
  const engine = await startEngine({ database, directUrl: url, keyring, settings, log: pino({ level: 'silent' }) });
  const adminToken = randomBytes(32).toString('base64url');
  const auth = { mode, signup: true, adminToken, keyCacheMs: 5000 };
  const app = await buildApp({ database, services: { keyring, runs: engine.runs }, auth });
  const answered = countSuccesses(app);
  try {
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const tenant = await createTenant(base);
    const hook = await createHook(base, tenant, mode);
    console.log(`Contract run (TOLSTOY_AUTH=${mode}) against ${base} as member ${tenant.userId} of organization ${tenant.orgId}`);
    const code = await schemathesis(
      bin,
      [
        '--config-file',
        await configFile(mode, tenant),
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
        reportDir,
        ...args,
      ],
      { TOLSTOY_CONTRACT_MEMBER: tenant.userId, TOLSTOY_CONTRACT_HOOK: hook, ...(mode === 'keys' && { TOLSTOY_OPERATOR_TOKEN: adminToken }) },
    );
    const report = await latestReport(reportDir);
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
    // The hooks' own housekeeping (test/contract/schemathesis_hooks.py) is no chain.
    if (request.headers['x-contract-cleanup'] !== undefined) return;
    const operationId = (request.routeOptions.schema as { operationId?: string } | undefined)?.operationId;
    if (operationId && (reply.statusCode < 300 || reachedFinished(operationId, reply.statusCode)))
      answered.set(operationId, (answered.get(operationId) ?? 0) + 1);
  });
  return answered;
}

/**
 * A signal reaches a run by an id an earlier start returned, but the fuzzer's runs finish within
 * milliseconds, and a finished run takes no signal: its 409 (not the 404 of an id never created)
 * shows the chain as a 202 would.
 */
function reachedFinished(operationId: string, status: number): boolean {
  return operationId === 'signalExecution' && status === 409;
}

/** Prints, per resource, how often its read, update and delete by id succeeded; 1 when any never did. */
function reportChains(answered: Map<string, number>): number {
  const chains: [string, string[]][] = [
    ...['Organization', 'User', 'Tool', 'Action', 'Flow', 'ExecutionLog'].map((resource): [string, string[]] => [
      resource,
      ['create', 'get', 'update', 'delete'].map((verb) => `${verb}${resource}`),
    ]),
    ['ApiKey', ['createApiKey', 'getApiKey', 'deleteApiKey']],
    ['FlowVersion', ['createFlow', 'listFlowVersions', 'getFlowVersion']],
    ['Execution', ['startExecution', 'getExecution', 'cancelExecution', 'retryExecution']],
    ['Trigger', ['createTrigger', 'getTrigger', 'updateTrigger', 'deleteTrigger']],
    [
      'Subscription',
      ['createSubscription', 'getSubscription', 'updateSubscription', 'rotateSubscriptionSecret', 'listSubscriptionDeliveries', 'deleteSubscription'],
    ],
    // The public hook, sent to the run's own webhook (TOLSTOY_CONTRACT_HOOK) by the hooks.
    ['Webhook', ['receiveWebhook']],
  ];
  console.log('Stateful chains (successful calls by id, reached only through links; a signal to a finished run counts):');
  const missing: string[] = [];
  for (const [resource, operationIds] of chains) {
    const counts = operationIds.map((operationId) => `${operationId} ${answered.get(operationId) ?? 0}`);
    console.log(`  ${resource.padEnd(13)} ${counts.join(', ')}`);
    const never = operationIds.filter((operationId) => (answered.get(operationId) ?? 0) === 0);
    if (never.length > 0) missing.push(`${resource} (${never.join(', ')})`);
  }
  // The last line of the run, so that it is what a CI log's tail shows.
  if (missing.length > 0) console.log(`Never chained through links: ${missing.join('; ')}.`);
  return missing.length > 0 ? 1 : 0;
}

/** What the latest JUnit report of `mode` counts: the cases passed and failed. */
export async function contractCounts(mode: AuthMode): Promise<{ passed: number; failed: number }> {
  return junitCounts(await latestReport(join(CONTRACT_REPORT_DIR, mode)));
}

async function junitCounts(report: string): Promise<{ passed: number; failed: number }> {
  const xml = await readFile(report, 'utf8').catch(() => '');
  const attribute = (name: string) => Number(xml.match(new RegExp(`<testsuites[^>]* ${name}="(\\d+)"`))?.[1] ?? 0);
  const failed = attribute('failures') + attribute('errors');
  return { passed: attribute('tests') - failed - attribute('skipped'), failed: xml ? failed : 1 };
}

async function latestReport(dir: string): Promise<string> {
  const reports = (await readdir(dir).catch(() => [])).filter((name) => name.endsWith('.xml')).sort();
  return join(dir, reports.at(-1) ?? '(none)');
}

interface Tenant {
  orgId: string;
  userId: string;
  key: string;
}

async function createTenant(base: string): Promise<Tenant> {
  const response = await fetch(`${base}/organizations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Contract Tenant', owner: { email: 'owner@contract.test', name: 'Contract Owner' } }),
  });
  const body = (await response.json()) as { id: string; owner: { id: string }; apiKey: { key: string } };
  return { orgId: body.id, userId: body.owner.id, key: body.apiKey.key };
}

/** A webhook trigger of the run's tenant, unsigned, for the hooks to send deliveries to: its token. */
async function createHook(base: string, tenant: Tenant, mode: AuthMode): Promise<string> {
  const credentials = mode === 'keys' ? { authorization: `Bearer ${tenant.key}` } : { 'x-org-id': tenant.orgId, 'x-user-id': tenant.userId };
  const post = async (path: string, body: object) => {
    const response = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...credentials },
      body: JSON.stringify(body),
    });
    return (await response.json()) as { id: string; webhook: { token: string } };
  };
  const flow = await post('/flows', { name: 'Contract hook' });
  return (await post('/triggers', { flowId: flow.id, name: 'Contract hook', type: 'webhook' })).webhook.token;
}

/**
 * schemathesis.toml with the credentials of this run, set through the spec's security schemes so
 * that schemathesis knows them for what they are (its ignored_auth check takes them away and
 * expects a 401): the tenant headers, or the tenant's API key. (With keys, the hooks send the
 * operations on organizations with the operator token.)
 */
async function configFile(mode: AuthMode, tenant: Tenant): Promise<string> {
  const base = await readFile(join(ROOT, 'schemathesis.toml'), 'utf8');
  const credentials =
    mode === 'headers'
      ? `[auth.openapi.organization]\napi_key = "${tenant.orgId}"\n\n[auth.openapi.member]\napi_key = "${tenant.userId}"\n`
      : `[auth.openapi.apiKey]\nbearer = "${tenant.key}"\n`;
  const dir = join(ROOT, '.schemathesis');
  await mkdir(dir, { recursive: true });
  const path = join(dir, `contract-${mode}.toml`);
  await writeFile(path, `${base}\n# Credentials of this run (scripts/contract.ts).\n${credentials}`, { mode: 0o600 });
  return path;
}

function schemathesis(bin: string, args: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(join(bin, 'st'), args, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...env, PYTHONUNBUFFERED: '1' } });
    child.on('close', (code) => resolve(code ?? 1));
  });
}

/** Both modes, or the one TOLSTOY_AUTH names. */
export function contractModes(env = process.env): AuthMode[] {
  return AUTH_MODES.filter((mode) => env.TOLSTOY_AUTH === undefined || env.TOLSTOY_AUTH === mode);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  let code = 0;
  for (const mode of contractModes()) code = Math.max(code, (await runContract(process.argv.slice(2), undefined, mode)).code);
  process.exit(code);
}
