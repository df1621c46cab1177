// The service's configuration, read once at start-up from the environment and an optional
// `.env` file (the environment wins). Every problem is reported at once, so an operator fixes
// them in one go; no message repeats a value, so none can leak a credential.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseEnv } from 'node:util';

import {
  ADMIN_TOKEN_MIN_LENGTH,
  AUTH_MODES,
  type AuthMode,
  type AuthSettings,
  type Config,
  DEFAULT_METRICS_PORT,
  type EngineSettings,
  EVALUATION,
  EVENTS,
  type HttpSettings,
  NODE_ENVS,
  type NodeEnv,
  type SecretSettings,
} from './settings.ts';

export class ConfigError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`Invalid configuration: ${problems.join('; ')}.`);
    this.problems = problems;
  }
}

const ROOT = new URL('../..', import.meta.url);
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const BOOLEANS: Record<string, boolean> = { true: true, '1': true, yes: true, false: false, '0': false, no: false };
const AWS_REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

/** The process environment over the variables of `.env` in the project's directory, if any. */
export function environment(env: NodeJS.ProcessEnv = process.env, dotenv = fileURLToPath(new URL('.env', ROOT))): NodeJS.ProcessEnv {
  let text: string;
  try {
    text = readFileSync(dotenv, 'utf8');
  } catch {
    return env;
  }
  return { ...parseEnv(text), ...env };
}

export function readConfig(env: NodeJS.ProcessEnv = environment()): Config {
  const problems: string[] = [];
  const value = (name: string) => (env[name] === undefined || env[name] === '' ? undefined : env[name]);

  const nodeEnv = (value('NODE_ENV') ?? 'development') as NodeEnv;
  if (!NODE_ENVS.includes(nodeEnv)) problems.push(`NODE_ENV must be one of ${NODE_ENVS.join(', ')}`);
  const production = nodeEnv === 'production';

  const port = Number(value('PORT') ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push('PORT must be a whole number from 0 to 65535');

  const logLevel = value('LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);

  const appName = value('APP_NAME') ?? 'Tolstoy';
  if (appName.length > 100) problems.push('APP_NAME must be at most 100 characters');

  const useSecrets = value('USE_AWS_SECRETS') === undefined ? production : BOOLEANS[value('USE_AWS_SECRETS')!.toLowerCase()];
  if (useSecrets === undefined) problems.push('USE_AWS_SECRETS must be true or false');
  const preparedStatements = BOOLEANS[(value('DATABASE_PREPARED_STATEMENTS') ?? 'true').toLowerCase()];
  if (preparedStatements === undefined) problems.push('DATABASE_PREPARED_STATEMENTS must be true or false');

  const milliseconds = (name: string, fallback: number, min: number, max: number) => {
    const ms = Number(value(name) ?? fallback);
    if (!Number.isInteger(ms) || ms < min || ms > max) problems.push(`${name} must be a whole number of milliseconds from ${min} to ${max}`);
    return ms;
  };
  const databaseTimeouts = {
    connectMs: milliseconds('DATABASE_CONNECT_TIMEOUT_MS', 5000, 100, 600_000),
    statementMs: milliseconds('DATABASE_STATEMENT_TIMEOUT_MS', 5000, 100, 600_000),
    idleInTransactionMs: milliseconds('DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS', 10_000, 100, 600_000),
  };
  const requestTimeoutMs = milliseconds('HTTP_REQUEST_TIMEOUT_MS', 30_000, 1000, 600_000);
  const shutdownTimeoutMs = milliseconds('SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000);

  const boolean = (name: string, fallback: boolean) => {
    const text = value(name);
    if (text === undefined) return fallback;
    const parsed = BOOLEANS[text.toLowerCase()];
    if (parsed === undefined) problems.push(`${name} must be true or false`);
    return parsed ?? fallback;
  };
  const whole = (name: string, fallback: number, min: number, max: number) => {
    const number = Number(value(name) ?? fallback);
    if (!Number.isInteger(number) || number < min || number > max) problems.push(`${name} must be a whole number from ${min} to ${max}`);
    return number;
  };
  const engine: EngineSettings = {
    worker: boolean('TOLSTOY_WORKER', true),
    concurrency: whole('TOLSTOY_WORKER_CONCURRENCY', 20, 1, 1000),
    orgConcurrency: whole('TOLSTOY_ORG_CONCURRENCY', 10, 1, 1000),
    // Tests and development call servers on this machine; production must not reach private networks.
    allowPrivateTargets: boolean('TOLSTOY_ALLOW_PRIVATE_TARGETS', !production),
    responseLimitBytes: whole('TOLSTOY_STEP_RESPONSE_LIMIT_BYTES', 1024 * 1024, 1024, 64 * 1024 * 1024),
    // Two step answers at their largest; why (README, "Faults and limits"): a worker holds 20 runs at once under a 256 MB heap.
    executionBudgetBytes: whole('TOLSTOY_EXECUTION_BUDGET_BYTES', 2 * 1024 * 1024, 64 * 1024, 1024 * 1024 * 1024),
    resumeLimit: whole('TOLSTOY_STEP_RESUME_LIMIT', 3, 1, 1000),
    orgQueueLimit: whole('TOLSTOY_ORG_QUEUE_LIMIT', 1000, 1, 10_000_000),
    runTreeLimit: whole('TOLSTOY_RUN_TREE_LIMIT', 10_000, 1, 10_000_000),
    evaluation: {
      processes: whole('TOLSTOY_EVALUATORS', EVALUATION.processes, 1, 64),
      memoryMb: whole('TOLSTOY_EVALUATOR_MEMORY_MB', EVALUATION.memoryMb, 16, 4096),
      templateTimeoutMs: milliseconds('TOLSTOY_TEMPLATE_TIMEOUT_MS', EVALUATION.templateTimeoutMs, 10, 5000),
      validationTimeoutMs: milliseconds('TOLSTOY_VALIDATION_TIMEOUT_MS', EVALUATION.validationTimeoutMs, 10, 1000),
      resultLimitBytes: whole('TOLSTOY_TEMPLATE_RESULT_LIMIT_BYTES', EVALUATION.resultLimitBytes, 1024, 64 * 1024 * 1024),
      schemaCacheSize: whole('TOLSTOY_SCHEMA_CACHE_SIZE', EVALUATION.schemaCacheSize, 1, 100_000),
    },
    events: {
      sendTimeoutMs: milliseconds('TOLSTOY_EVENT_TIMEOUT_MS', EVENTS.sendTimeoutMs, 100, 60_000),
      retryScheduleMs: retrySchedule(value('TOLSTOY_EVENT_RETRY_SCHEDULE_MS'), problems),
      failingLimitMs: milliseconds('TOLSTOY_SUBSCRIPTION_FAILING_LIMIT_MS', EVENTS.failingLimitMs, 0, 30 * 24 * 3_600_000),
      inFlight: whole('TOLSTOY_EVENT_SENDS', EVENTS.inFlight, 1, 1000),
      orgInFlight: whole('TOLSTOY_EVENT_ORG_SENDS', EVENTS.orgInFlight, 1, 1000),
    },
  };
  if (engine.events.orgInFlight > engine.events.inFlight) problems.push('TOLSTOY_EVENT_ORG_SENDS must be at most TOLSTOY_EVENT_SENDS');
  const encryptionKeys = {
    current: encryptionKey('TOLSTOY_ENCRYPTION_KEY', value('TOLSTOY_ENCRYPTION_KEY'), problems),
    previous: encryptionKey('TOLSTOY_ENCRYPTION_KEY_PREVIOUS', value('TOLSTOY_ENCRYPTION_KEY_PREVIOUS'), problems),
  };

  const auth = { ...authSettings(value, production, problems), keyCacheMs: milliseconds('TOLSTOY_KEY_CACHE_MS', 5000, 0, 60_000) };

  const http: HttpSettings = {
    rateLimits: {
      perKey: whole('TOLSTOY_RATE_LIMIT_PER_KEY', 1200, 0, 10_000_000),
      perOrganization: whole('TOLSTOY_RATE_LIMIT_PER_ORG', 6000, 0, 10_000_000),
      keyLookupsPerAddress: whole('TOLSTOY_RATE_LIMIT_KEY_LOOKUPS_PER_ADDRESS', 300, 0, 10_000_000),
      signupsPerAddress: whole('TOLSTOY_RATE_LIMIT_SIGNUPS_PER_ADDRESS', 10, 0, 10_000_000),
      webhooksPerTrigger: whole('TOLSTOY_RATE_LIMIT_WEBHOOKS_PER_TRIGGER', 600, 0, 10_000_000),
      windowMs: milliseconds('TOLSTOY_RATE_LIMIT_WINDOW_MS', 60_000, 1000, 3_600_000),
    },
    corsOrigins: corsOrigins(value('TOLSTOY_CORS_ORIGINS'), problems),
    publicUrl: publicUrl(value('TOLSTOY_PUBLIC_URL'), problems),
  };

  const metricsText = value('TOLSTOY_METRICS_PORT') ?? String(DEFAULT_METRICS_PORT);
  const metricsPort = metricsText === 'off' ? undefined : Number(metricsText);
  if (metricsPort !== undefined && (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535)) {
    problems.push('TOLSTOY_METRICS_PORT must be a whole number from 0 to 65535, or off');
  }

  const postgresPort = value('TOLSTOY_POSTGRES_PORT') === undefined ? undefined : whole('TOLSTOY_POSTGRES_PORT', 0, 1, 65535);

  const databaseUrl = postgresUrl('DATABASE_URL', value('DATABASE_URL'), problems);
  const directUrl = postgresUrl('DIRECT_URL', value('DIRECT_URL'), problems);
  if (directUrl && !databaseUrl) problems.push('DIRECT_URL is set without DATABASE_URL');

  let secrets: SecretSettings | undefined;
  const ignored: string[] = [];
  if (useSecrets) {
    const region = value('AWS_REGION') ?? value('AWS_DEFAULT_REGION');
    if (!region) problems.push('AWS_REGION is required to read the database secret from AWS Secrets Manager');
    else if (!AWS_REGION.test(region)) problems.push('AWS_REGION must be an AWS region such as us-east-1');
    const timeoutMs = milliseconds('AWS_SECRETS_TIMEOUT_MS', 5000, 100, 60000);
    secrets = { region: region ?? '', secretName: value('AWS_SECRET_NAME') ?? 'tolstoy-db-secret', timeoutMs };
    // The secret is the one source of the database's credentials, so that rotating it works.
    for (const name of ['DATABASE_URL', 'DIRECT_URL']) if (value(name)) ignored.push(name);
  } else if (production && !databaseUrl) {
    problems.push('DATABASE_URL is required in production when USE_AWS_SECRETS is false: the embedded PostgreSQL is for development only');
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    nodeEnv,
    appName,
    port,
    // Outside production the API listens on loopback only: it trusts tenant headers by default.
    host: value('HOST') ?? (production ? '0.0.0.0' : '127.0.0.1'),
    logLevel,
    database: !secrets && databaseUrl ? { url: databaseUrl, directUrl: directUrl ?? databaseUrl } : undefined,
    secrets,
    ignored,
    dataDir: value('TOLSTOY_DATA_DIR') ?? fileURLToPath(new URL('.data/postgres', ROOT)),
    preparedStatements: preparedStatements!,
    databaseTimeouts,
    requestTimeoutMs,
    shutdownTimeoutMs,
    engine,
    encryptionKeys,
    auth,
    http,
    metricsPort,
    // Metrics are unauthenticated: only what runs on this machine may read them unless the operator says otherwise.
    metricsHost: value('TOLSTOY_METRICS_HOST') ?? '127.0.0.1',
    // A scraper is configured with a fixed port in production; elsewhere a second Tolstoy must still start.
    metricsPortFallback: !production && value('TOLSTOY_METRICS_PORT') === undefined,
    postgresPort,
  };
}

// Comma-separated waits in milliseconds, one per attempt: 1 to 20 of them, each at most a week.
function retrySchedule(text: string | undefined, problems: string[]): number[] {
  if (text === undefined) return EVENTS.retryScheduleMs;
  const waits = text.split(',').map((wait) => Number(wait.trim()));
  if (waits.length > 20 || waits.some((wait) => !Number.isInteger(wait) || wait < 0 || wait > 7 * 24 * 3_600_000)) {
    problems.push('TOLSTOY_EVENT_RETRY_SCHEDULE_MS must be 1 to 20 whole numbers of milliseconds from 0 to 604800000, separated by commas');
    return EVENTS.retryScheduleMs;
  }
  return waits;
}

// An http(s) URL without query or fragment; kept without a trailing slash.
function publicUrl(text: string | undefined, problems: string[]): string | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const parsed = URL.canParse(text.trim()) ? new URL(text.trim()) : undefined;
  if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || parsed.search || parsed.hash || parsed.username) {
    problems.push('TOLSTOY_PUBLIC_URL must be an http or https URL such as https://tolstoy.example.com, without query or fragment');
    return undefined;
  }
  return parsed.href.replace(/\/+$/, '');
}

// A comma-separated list of origins (scheme://host[:port]), or `*`.
function corsOrigins(text: string | undefined, problems: string[]): string[] {
  const origins = (text ?? '')
    .split(',')
    .map((origin) => origin.trim())
    .filter(Boolean);
  for (const origin of origins) {
    if (origin === '*') continue;
    const parsed = URL.canParse(origin) ? new URL(origin) : undefined;
    if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || parsed.origin !== origin) {
      problems.push('TOLSTOY_CORS_ORIGINS must be * or origins such as https://app.example.com, separated by commas');
      break;
    }
  }
  return origins;
}

/** What an operator must hear about how callers are authenticated, at start-up. */
export function authWarnings({ nodeEnv, auth }: Pick<Config, 'nodeEnv' | 'auth'>): string[] {
  const warnings: string[] = [];
  if (nodeEnv === 'production' && auth.mode === 'headers') {
    warnings.push(
      'WARNING: TOLSTOY_AUTH=headers in production. X-Org-ID and X-User-ID are trusted as sent: anyone who can reach this ' +
        'server can act as any member of any organization. Run it so only behind a gateway that authenticates callers and ' +
        'sets those headers; otherwise unset TOLSTOY_AUTH to require API keys.',
    );
  }
  if (!auth.signup && auth.adminToken === undefined) {
    warnings.push('Sign-up is closed (TOLSTOY_SIGNUP=closed) and TOLSTOY_ADMIN_TOKEN is not set: no one can create an organization.');
  }
  return warnings;
}

function authSettings(value: (name: string) => string | undefined, production: boolean, problems: string[]): Omit<AuthSettings, 'keyCacheMs'> {
  const mode = (value('TOLSTOY_AUTH') ?? (production ? 'keys' : 'headers')) as AuthMode;
  if (!AUTH_MODES.includes(mode)) problems.push(`TOLSTOY_AUTH must be one of ${AUTH_MODES.join(', ')}`);
  const signup = value('TOLSTOY_SIGNUP') ?? (production ? 'closed' : 'open');
  if (signup !== 'open' && signup !== 'closed') problems.push('TOLSTOY_SIGNUP must be open or closed');
  const adminToken = value('TOLSTOY_ADMIN_TOKEN');
  if (adminToken !== undefined && (adminToken.length < ADMIN_TOKEN_MIN_LENGTH || /\s/.test(adminToken))) {
    problems.push(`TOLSTOY_ADMIN_TOKEN must be at least ${ADMIN_TOKEN_MIN_LENGTH} characters without spaces (make one with: openssl rand -base64 32)`);
  }
  return { mode, signup: signup === 'open', adminToken };
}

/** A key that encrypts credentials: the base64 of 32 random bytes (`openssl rand -base64 32`). */
export function encryptionKey(name: string, text: string | undefined, problems: string[]): string | undefined {
  if (text === undefined) return undefined;
  if (!/^[A-Za-z0-9+/]{43}=$/.test(text) || Buffer.from(text, 'base64').length !== 32) {
    problems.push(`${name} must be the base64 of 32 bytes (make one with: openssl rand -base64 32)`);
    return undefined;
  }
  return text;
}

/** The URL when it is a PostgreSQL URL; otherwise a problem that names the variable, never its value. */
export function postgresUrl(name: string, value: string | undefined, problems: string[]): string | undefined {
  if (!value) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problems.push(`${name} is not a URL`);
    return undefined;
  }
  if (url.protocol !== 'postgresql:' && url.protocol !== 'postgres:') {
    problems.push(`${name} must be a postgresql:// URL`);
    return undefined;
  }
  return value;
}

/** A database URL without its password, for logs and messages. */
export function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = '****';
    return url.toString();
  } catch {
    return '(unparseable URL)';
  }
}
