// Programs some tests drive that come from Debian's packages: Chromium (the documentation test;
// Playwright's own browser download cannot work here) and PgBouncer (Tolstoy behind a
// transaction-mode pooler, as Neon's is). Each is installed with apt-get when a test first asks
// for it, when we may (as root); nothing else waits for it.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { exclusively } from './lock.ts';

export const CHROMIUM = '/usr/bin/chromium';
export const PGBOUNCER = '/usr/sbin/pgbouncer';

// dpkg allows one apt-get at a time on the whole machine, whichever checkout runs it.
const APT_LOCK = join(tmpdir(), 'tolstoy-apt-get');
// Bounds: on a slow mirror Chromium takes minutes; apt-get also waits out dpkg's lock held by others.
const INSTALL_TIMEOUT_MS = 10 * 60_000;

export function chromium(): Promise<string> {
  return debianTool('chromium', CHROMIUM);
}

export function pgbouncer(): Promise<string> {
  return debianTool('pgbouncer', PGBOUNCER);
}

/** The path of `program`, installed from Debian's package `name` on first use. */
async function debianTool(name: string, program: string): Promise<string> {
  if (existsSync(program)) return program;
  if (userInfo().uid !== 0) throw new Error(`This test needs ${program}: install Debian's package (apt-get install ${name}).`);
  await exclusively(APT_LOCK, `apt-get install ${name}`, async () => {
    // Another test may have installed it while this one waited.
    if (existsSync(program)) return;
    process.stderr.write(`Installing Debian’s ${name} for the tests …\n`);
    const run = promisify(execFile);
    const options = { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, maxBuffer: 64 * 1024 * 1024, timeout: INSTALL_TIMEOUT_MS };
    const waitForDpkg = ['-o', `DPkg::Lock::Timeout=${INSTALL_TIMEOUT_MS / 2000}`];
    await run('apt-get', [...waitForDpkg, 'update', '-qq'], options);
    await run('apt-get', [...waitForDpkg, 'install', '-y', '-qq', '--no-install-recommends', name], options);
  });
  return program;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await chromium());
  console.log(await pgbouncer());
}
