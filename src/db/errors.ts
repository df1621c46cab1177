// Recognising the database's refusals: they carry the name of the constraint that refused.
import { STALLED } from './connection.ts';

interface DriverError {
  code?: string;
  meta?: { driverAdapterError?: { cause?: { kind?: string; constraint?: { index?: string } } } };
}

/** The unique constraint a write broke, if that is why it failed. */
export function brokenUniqueConstraint(error: unknown): string | undefined {
  return constraintOf(error, 'P2002', 'UniqueConstraintViolation');
}

/** The foreign key a write or delete broke, if that is why it failed. */
export function brokenForeignKey(error: unknown): string | undefined {
  return constraintOf(error, 'P2003', 'ForeignKeyConstraintViolation');
}

/** Whether an update or delete found no row to change. */
export function isMissingRow(error: unknown): boolean {
  return (error as DriverError | null)?.code === 'P2025';
}

// A model query's error has its own code; a raw statement's is P2010, with the kind in its cause.
function constraintOf(error: unknown, code: string, kind: string): string | undefined {
  const known = error as DriverError | null;
  const cause = known?.meta?.driverAdapterError?.cause;
  if (known?.code !== code && !(known?.code === 'P2010' && cause?.kind === kind)) return undefined;
  return cause?.constraint?.index ?? '';
}

// Failures of the database itself, not of the request: the client should retry later.
const UNAVAILABLE_KINDS = new Set([
  'DatabaseNotReachable',
  'ConnectionClosed',
  'SocketTimeout',
  'TooManyConnections',
  'TransactionWriteConflict',
  'AuthenticationFailed',
  'DatabaseAccessDenied',
  'DatabaseDoesNotExist',
]);
const UNAVAILABLE_CODES: Record<string, string> = {
  P1000: 'AuthenticationFailed',
  P1001: 'DatabaseNotReachable',
  P1002: 'SocketTimeout',
  P1008: 'SocketTimeout',
  P1017: 'ConnectionClosed',
  P2024: 'TooManyConnections',
  P2028: 'TransactionTimedOut',
  P2034: 'TransactionWriteConflict',
  ECONNREFUSED: 'DatabaseNotReachable',
  ENOTFOUND: 'DatabaseNotReachable',
  EAI_AGAIN: 'DatabaseNotReachable',
  EHOSTUNREACH: 'DatabaseNotReachable',
  ECONNRESET: 'ConnectionClosed',
  EPIPE: 'ConnectionClosed',
  ETIMEDOUT: 'SocketTimeout',
  [STALLED]: 'Stalled',
};
// SQLSTATEs of a server that cannot serve now: statement timeout (57014), lock timeout (55P03),
// a session ended for idling in a transaction (25P03), and the classes of connection exceptions
// (08), insufficient resources (53) and shutdowns (57P).
const UNAVAILABLE_SQLSTATES = /^(08|53|57P)|^(57014|55P03|25P03|40001|40P01)$/;
// node-postgres reports a lost or never-made connection with these messages and no code.
const UNAVAILABLE_MESSAGES =
  /^(Connection terminated( unexpectedly| due to connection timeout)?|timeout expired|timeout exceeded when trying to connect|Client has encountered a connection error and is not queryable|Client was closed and is not queryable)$/;

/** Why the database could not serve a request (AuthenticationFailed, DatabaseNotReachable, …), if that is why it failed. */
export function unavailability(error: unknown): string | undefined {
  for (let failure = error as Failure | undefined, depth = 0; failure && depth < 5; failure = failure.cause, depth++) {
    const cause = adapterCause(failure);
    if (cause?.kind && UNAVAILABLE_KINDS.has(cause.kind)) return cause.kind;
    const sqlState = cause?.originalCode ?? cause?.code;
    if (sqlState && UNAVAILABLE_SQLSTATES.test(sqlState)) return `SQLSTATE ${sqlState}`;
    const code = typeof failure.code === 'string' ? failure.code : undefined;
    if (code && UNAVAILABLE_CODES[code]) return UNAVAILABLE_CODES[code];
    if (code && UNAVAILABLE_SQLSTATES.test(code)) return `SQLSTATE ${code}`;
    if (typeof failure.message === 'string' && UNAVAILABLE_MESSAGES.test(failure.message)) return 'ConnectionClosed';
  }
  return undefined;
}

interface AdapterCause {
  kind?: string;
  originalCode?: string;
  code?: string;
}

interface Failure {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  cause?: Failure;
  meta?: { driverAdapterError?: { cause?: AdapterCause } };
}

// A query's failure carries the driver adapter's error in its meta; a failed COMMIT is that error itself.
function adapterCause(failure: Failure): AdapterCause | undefined {
  if (failure.name === 'DriverAdapterError') return failure.cause as AdapterCause | undefined;
  return failure.meta?.driverAdapterError?.cause;
}
