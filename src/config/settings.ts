// What the service's configuration holds: the shapes of its settings and their fixed defaults.
// config.ts reads them from the environment.

export const NODE_ENVS = ['development', 'production', 'test'] as const;
export type NodeEnv = (typeof NODE_ENVS)[number];

export interface DatabaseUrls {
  /** Pooled connection for the application. */
  url: string;
  /** Direct connection for migrations. */
  directUrl: string;
  /** In AWS mode, the secret may also hold the keys that encrypt credentials. */
  encryptionKeys?: EncryptionKeys;
}

/** Keys that encrypt tool credentials (base64 of 32 bytes): the current one, and the one it replaces during a rotation. */
export interface EncryptionKeys {
  current: string | undefined;
  previous: string | undefined;
}

export interface SecretSettings {
  region: string;
  secretName: string;
  /** How long one request to Secrets Manager may take before it is retried. */
  timeoutMs: number;
}

/** How long Tolstoy waits on its database, so that a stalled one costs a 503 instead of a hang. */
export interface DatabaseTimeouts {
  /** To open a connection, or to wait for a free one in the pool. */
  connectMs: number;
  /** One statement, enforced by the server; Tolstoy gives up on a connection silent for a second longer. */
  statementMs: number;
  /** A transaction left idle, enforced by the server. */
  idleInTransactionMs: number;
}

export interface Config {
  nodeEnv: NodeEnv;
  appName: string;
  port: number;
  host: string;
  logLevel: string;
  /** From the environment; absent outside production means "the embedded PostgreSQL". */
  database: DatabaseUrls | undefined;
  /** Set when the database URLs come from AWS Secrets Manager instead. */
  secrets: SecretSettings | undefined;
  /** Variables that were set but do not apply in this mode, for a warning at start-up. */
  ignored: string[];
  /** Where the embedded PostgreSQL keeps its data. */
  dataDir: string;
  /** Whether queries run as named prepared statements (off for poolers without support). */
  preparedStatements: boolean;
  databaseTimeouts: DatabaseTimeouts;
  /** How long a client may take to send a whole request. */
  requestTimeoutMs: number;
  /** How long a shutdown may wait for requests in flight before it closes their connections. */
  shutdownTimeoutMs: number;
  engine: EngineSettings;
  /** The key that encrypts tool credentials, when configured (base64 of 32 bytes), and the one it replaces. */
  encryptionKeys: EncryptionKeys;
  auth: AuthSettings;
  http: HttpSettings;
  /** The port that serves GET /metrics, apart from the API; undefined: no metrics. */
  metricsPort: number | undefined;
  /** The interface the metrics listen on: loopback unless configured otherwise, whatever HOST says. */
  metricsHost: string;
  /** Whether the default metrics port, when in use, gives way to a free one (outside production, when unset). */
  metricsPortFallback: boolean;
  /** The embedded PostgreSQL's port; undefined: a free one at each start. */
  postgresPort: number | undefined;
}

/** Requests a caller may make per window: per API key (per member, with tenant headers) and per organization; 0 is no limit. */
export interface RateLimitSettings {
  perKey: number;
  perOrganization: number;
  /** Per client address: API keys looked up in the database (those this node does not remember), and sign-ups. */
  keyLookupsPerAddress: number;
  signupsPerAddress: number;
  /** Deliveries to one webhook trigger per window, on each node. */
  webhooksPerTrigger: number;
  windowMs: number;
}

/** What the HTTP layer does besides the operations. */
export interface HttpSettings {
  rateLimits: RateLimitSettings;
  /** Origins whose pages may call the API (CORS); none by default, `*` for any. */
  corsOrigins: string[];
  /** Where the API is reached from outside (webhook URLs start with it); the request's own address when unset. */
  publicUrl: string | undefined;
}

/** Where `npm start` serves its metrics unless told otherwise (`npm run worker`: the next port). */
export const DEFAULT_METRICS_PORT = 9464;

export const AUTH_MODES = ['keys', 'headers'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

/** Who may call Tolstoy, and how they say who they are. */
export interface AuthSettings {
  /** `keys`: an API key on every tenant-scoped call; `headers`: X-Org-ID and X-User-ID are trusted as sent. */
  mode: AuthMode;
  /** Whether anyone may create an organization (otherwise only the operator token). */
  signup: boolean;
  /** The operator's token, which lists and manages every organization. */
  adminToken: string | undefined;
  /** How long a node trusts a key it has verified: the bound on a revocation reaching it. */
  keyCacheMs: number;
}

/** The operator token is a password: at least this long, so that guessing it is hopeless. */
export const ADMIN_TOKEN_MIN_LENGTH = 32;

export interface EngineSettings {
  /** Whether this process runs flows (a worker) besides serving the API. */
  worker: boolean;
  /** Executions one worker process runs at once. */
  concurrency: number;
  /** Executions of one organization that run at once, across all workers. */
  orgConcurrency: number;
  /** Whether steps may call private, loopback, link-local and metadata addresses. */
  allowPrivateTargets: boolean;
  /** The largest response body a step reads; a larger one fails the step. */
  responseLimitBytes: number;
  /** What one execution may hold and store: its steps' requests and responses, in bytes; past it the run fails. */
  executionBudgetBytes: number;
  /** Times a step interrupted (its worker died) is resumed; interrupted once more, its run fails. */
  resumeLimit: number;
  /** Runs an organization may have queued at once; past it, starting or retrying one answers 429. */
  orgQueueLimit: number;
  /** Runs one tree of sub-flows may hold, its root included; past it, the sub-flow step fails. */
  runTreeLimit: number;
  evaluation: EvaluationSettings;
  events: EventSettings;
  /** Overrides the schedule of every maintenance job (src/engine/jobs/maintenance.ts); tests run them every few seconds. */
  maintenanceCron?: string;
}

/** The bounds of evaluating tenants' templates and input schemas (src/engine/evaluator.ts). */
export interface EvaluationSettings {
  /** Child processes that evaluate, per worker. */
  processes: number;
  /** The heap of each. */
  memoryMb: number;
  templateTimeoutMs: number;
  validationTimeoutMs: number;
  /** The largest JSON a template may render. */
  resultLimitBytes: number;
  /** Compiled input schemas each process keeps. */
  schemaCacheSize: number;
}

export const EVALUATION: EvaluationSettings = {
  processes: 2,
  memoryMb: 128,
  templateTimeoutMs: 1000,
  validationTimeoutMs: 1000,
  resultLimitBytes: 4 * 1024 * 1024,
  schemaCacheSize: 500,
};

/** How each worker sends the organizations' events to their subscriptions (src/events/). */
export interface EventSettings {
  /** The longest one attempt may take, to a complete answer. */
  sendTimeoutMs: number;
  /** Before each attempt, the wait after the one before it (the first: after the event); after the last, the delivery fails. */
  retryScheduleMs: number[];
  /** How long every attempt to a subscription may fail before it is disabled. */
  failingLimitMs: number;
  /** Sends one worker process has in flight at once, and of those, one organization's. */
  inFlight: number;
  orgInFlight: number;
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

export const EVENTS: EventSettings = {
  sendTimeoutMs: 10 * SECOND,
  // The first three attempts within a minute of the event, the last about 46 hours after it.
  retryScheduleMs: [0, 5 * SECOND, 30 * SECOND, 2 * MINUTE, 15 * MINUTE, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, 24 * HOUR],
  // Svix's: five days.
  failingLimitMs: 5 * 24 * HOUR,
  inFlight: 32,
  orgInFlight: 4,
};
