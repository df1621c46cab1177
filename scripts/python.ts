// The Python tools the tests use (schemathesis, …), installed from PyPI into a virtual
// environment the project owns (.venv), so nothing is assumed installed beyond python3.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const VENV = join(ROOT, '.venv');
const REQUIREMENTS = join(ROOT, 'scripts', 'python-requirements.txt');

/** The bin directory of the virtual environment, created or updated to the pinned requirements. */
export async function pythonTools(): Promise<string> {
  const run = promisify(execFile);
  const wanted = createHash('sha256')
    .update(await readFile(REQUIREMENTS))
    .digest('hex');
  const stamp = join(VENV, '.requirements.sha256');
  const bin = join(VENV, 'bin');
  if (existsSync(stamp) && (await readFile(stamp, 'utf8')) === wanted) return bin;
  console.log('Installing the pinned Python test tools into .venv …');
  if (!existsSync(join(bin, 'python'))) await run('python3', ['-m', 'venv', VENV]);
  await run(join(bin, 'python'), ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', REQUIREMENTS], { maxBuffer: 16 * 1024 * 1024 });
  await writeFile(stamp, wanted);
  return bin;
}
