// Recognising the database's refusals: they carry the name of the constraint that refused.

interface DriverError {
  code?: string;
  meta?: { driverAdapterError?: { cause?: { constraint?: { index?: string } } } };
}

/** The unique constraint a write broke, if that is why it failed. */
export function brokenUniqueConstraint(error: unknown): string | undefined {
  return constraintOf(error, 'P2002');
}

/** The foreign key a write or delete broke, if that is why it failed. */
export function brokenForeignKey(error: unknown): string | undefined {
  return constraintOf(error, 'P2003');
}

/** Whether an update or delete found no row to change. */
export function isMissingRow(error: unknown): boolean {
  return (error as DriverError | null)?.code === 'P2025';
}

function constraintOf(error: unknown, code: string): string | undefined {
  const known = error as DriverError | null;
  if (known?.code !== code) return undefined;
  return known.meta?.driverAdapterError?.cause?.constraint?.index ?? '';
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
  P2034: 'TransactionWriteConflict',
  ECONNREFUSED: 'DatabaseNotReachable',
  ENOTFOUND: 'DatabaseNotReachable',
  ECONNRESET: 'ConnectionClosed',
  ETIMEDOUT: 'SocketTimeout',
};

/** Why the database could not serve a request (AuthenticationFailed, DatabaseNotReachable, …), if that is why it failed. */
export function unavailability(error: unknown): string | undefined {
  const failure = error as (DriverError & { meta?: { driverAdapterError?: { cause?: { kind?: string; originalCode?: string } } } }) | null;
  const cause = failure?.meta?.driverAdapterError?.cause;
  if (cause?.kind && UNAVAILABLE_KINDS.has(cause.kind)) return cause.kind;
  // PostgreSQL's connection exceptions (08…) and shutdowns (57P…), such as a terminated session.
  if (cause?.originalCode?.startsWith('08') || cause?.originalCode?.startsWith('57P')) return 'ConnectionClosed';
  return failure?.code === undefined ? undefined : UNAVAILABLE_CODES[failure.code];
}
