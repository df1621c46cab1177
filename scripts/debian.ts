// Programs some tests drive that come from Debian's packages: Chromium (the documentation test;
// Playwright's own browser download cannot work here) and PgBouncer (Tolstoy behind a
// transaction-mode pooler, as Neon's is). Missing ones are installed with apt-get in one go, when
// we may (as root).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { promisify } from 'node:util';

export const CHROMIUM = '/usr/bin/chromium';
export const PGBOUNCER = '/usr/sbin/pgbouncer';

const PACKAGES: Record<string, string> = { chromium: CHROMIUM, pgbouncer: PGBOUNCER };

export async function debianTools(): Promise<void> {
  const missing = Object.keys(PACKAGES).filter((name) => !existsSync(PACKAGES[name]!));
  if (missing.length === 0) return;
  if (userInfo().uid !== 0)
    throw new Error(
      `Some tests need ${missing.map((name) => PACKAGES[name]).join(' and ')}: install Debian's packages (apt-get install ${missing.join(' ')}).`,
    );
  console.log(`Installing Debian’s ${missing.join(' and ')} for the tests …`);
  const run = promisify(execFile);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get', ['update', '-qq'], { env, maxBuffer: 64 * 1024 * 1024 });
  await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env, maxBuffer: 64 * 1024 * 1024 });
}

export async function chromium(): Promise<string> {
  await debianTools();
  return CHROMIUM;
}

export async function pgbouncer(): Promise<string> {
  await debianTools();
  return PGBOUNCER;
}

if (import.meta.url === `file://${process.argv[1]}`) await debianTools();
