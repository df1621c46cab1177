// `Prefer: wait=N` (RFC 7240): a client asks to be answered when a run finishes, within N seconds.

/** The longest `Prefer: wait` honoured, in seconds. */
export const MAX_WAIT_SECONDS = 30;

/** The wait asked for, capped at MAX_WAIT_SECONDS; undefined when none was. */
export function waitOf(prefer: string | undefined): number | undefined {
  const match = prefer === undefined ? null : /(?:^|[,;\s])wait\s*=\s*"?(\d+)"?/i.exec(prefer);
  return match ? Math.min(Number(match[1]), MAX_WAIT_SECONDS) : undefined;
}
