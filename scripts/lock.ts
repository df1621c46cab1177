// One process at a time: test files run in parallel, and several may ask at once for a tool that
// is installed on first use. proper-lockfile rather than a lock of our own: its lock is a
// directory made atomically, refreshed while held and taken over once its holder has died.
import lockfile from 'proper-lockfile';

/** Runs `fn` holding the lock named `path` (`<path>.lock` is made), after waiting at most `waitMs` for it. */
export async function exclusively<T>(path: string, what: string, fn: () => Promise<T>, waitMs = 15 * 60_000): Promise<T> {
  const release = await lockfile
    .lock(path, { realpath: false, retries: { retries: Math.ceil(waitMs / 500), factor: 1, minTimeout: 500, maxTimeout: 500 } })
    .catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ELOCKED') throw error;
      throw new Error(`Waited ${waitMs / 1000} s for another process to finish ${what} (${path}.lock); giving up.`);
    });
  try {
    return await fn();
  } finally {
    await release();
  }
}
