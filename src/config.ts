// The service's configuration, read once at start-up from the environment. Every problem is
// reported at once, so an operator fixes them in one go.
import { fileURLToPath } from 'node:url';

export const NODE_ENVS = ['development', 'production', 'test'] as const;
export type NodeEnv = (typeof NODE_ENVS)[number];

export interface Config {
  nodeEnv: NodeEnv;
  port: number;
  host: string;
  logLevel: string;
  /** Pooled connection for the application; absent outside production means "embedded". */
  databaseUrl: string | undefined;
  /** Direct connection for migrations; defaults to databaseUrl. */
  directUrl: string | undefined;
  /** Where the embedded PostgreSQL keeps its data. */
  dataDir: string;
}

export class ConfigError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`Invalid configuration: ${problems.join('; ')}`);
    this.problems = problems;
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const DEFAULT_DATA_DIR = fileURLToPath(new URL('../.data/postgres', import.meta.url));

export function readConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const nodeEnv = (env.NODE_ENV || 'development') as NodeEnv;
  if (!NODE_ENVS.includes(nodeEnv)) problems.push(`NODE_ENV must be one of ${NODE_ENVS.join(', ')} (got "${env.NODE_ENV}")`);
  const port = Number(env.PORT || 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push(`PORT must be a whole number from 0 to 65535 (got "${env.PORT}")`);
  const logLevel = env.LOG_LEVEL || 'info';
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${logLevel}")`);
  const databaseUrl = postgresUrl('DATABASE_URL', env.DATABASE_URL, problems);
  const directUrl = postgresUrl('DIRECT_URL', env.DIRECT_URL, problems) ?? databaseUrl;
  if (nodeEnv === 'production' && !databaseUrl) problems.push('DATABASE_URL is required in production: the embedded PostgreSQL is for development only');
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    nodeEnv,
    port,
    // Outside production the API listens on loopback only: it has no authentication of its own.
    host: env.HOST || (nodeEnv === 'production' ? '0.0.0.0' : '127.0.0.1'),
    logLevel,
    databaseUrl,
    directUrl,
    dataDir: env.TOLSTOY_DATA_DIR || DEFAULT_DATA_DIR,
  };
}

function postgresUrl(name: string, value: string | undefined, problems: string[]): string | undefined {
  if (!value) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problems.push(`${name} is not a URL`);
    return undefined;
  }
  if (url.protocol !== 'postgresql:' && url.protocol !== 'postgres:') problems.push(`${name} must be a postgresql:// URL (got ${url.protocol}//…)`);
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
