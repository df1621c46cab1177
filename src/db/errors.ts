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
