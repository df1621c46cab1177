// The browser the documentation test drives: Debian's chromium package, installed with apt-get
// when it is missing and we may (as root). Playwright's own browser download cannot work here.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { promisify } from 'node:util';

export const CHROMIUM = '/usr/bin/chromium';

export async function chromium(): Promise<string> {
  if (existsSync(CHROMIUM)) return CHROMIUM;
  if (userInfo().uid !== 0) throw new Error(`The documentation test needs Chromium at ${CHROMIUM}: install Debian's chromium package (apt-get install chromium).`);
  console.log('Installing Debian’s chromium package for the documentation test …');
  const run = promisify(execFile);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get', ['update', '-qq'], { env, maxBuffer: 64 * 1024 * 1024 });
  await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'chromium'], { env, maxBuffer: 64 * 1024 * 1024 });
  return CHROMIUM;
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await chromium());
