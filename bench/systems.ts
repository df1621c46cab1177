// The three systems of the benchmark, each started as its own process on the same database.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../src/db/embedded.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

// Tolstoy runs exactly as `npm start` runs it (after the build): `exec node <flags> dist/server.js`.
const start = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start
  .replace(/^exec /, '')
  .split(' ')
  .slice(1);

export const SYSTEMS = {
  tolstoy: { label: 'Tolstoy (production build, as npm start runs it)', args: start },
  raw: { label: 'Fastify + pg, hand-written SQL (the floor)', args: ['bench/raw/server.ts'] },
  nest: { label: 'NestJS + platform-fastify + Prisma 7 (the original stack)', args: ['bench/nest/dist/bench/nest/src/main.js'] },
} as const;

export type SystemName = keyof typeof SYSTEMS;

export interface RunningSystem {
  name: SystemName;
  base: string;
  pid: number;
  /** The highest resident set size of the process so far, in MB. */
  peakRssMb(): Promise<number>;
  stop(): Promise<void>;
}

// Production needs a key for tool credentials; the benchmark makes one for its run.
const ENCRYPTION_KEY = randomBytes(32).toString('base64');

export async function startSystem(name: SystemName, databaseUrl: string): Promise<RunningSystem> {
  const port = await freePort();
  const env = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    DIRECT_URL: '',
    PORT: String(port),
    HOST: '127.0.0.1',
    NODE_ENV: 'production',
    USE_AWS_SECRETS: 'false',
    TOLSTOY_ENCRYPTION_KEY: ENCRYPTION_KEY,
    // API keys, as in production; the peers check the same keys.
    TOLSTOY_AUTH: 'keys',
    // Neither peer limits its callers; the bench's few tenants would hit Tolstoy's limits at once.
    TOLSTOY_RATE_LIMIT_PER_KEY: '0',
    TOLSTOY_RATE_LIMIT_PER_ORG: '0',
    TOLSTOY_METRICS_PORT: 'off',
  };
  const child = spawn(process.execPath, [...SYSTEMS[name].args], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300 && child.exitCode === null; i++) {
    if (
      await fetch(`${base}/flows`)
        .then(() => true)
        .catch(() => false)
    )
      return running(name, base, child);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`${name} did not start: ${stderr}`);
}

function running(name: SystemName, base: string, child: ChildProcess): RunningSystem {
  return {
    name,
    base,
    pid: child.pid!,
    async peakRssMb() {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      return Number(status.match(/VmHWM:\s+(\d+) kB/)![1]) / 1024;
    },
    stop() {
      return new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
    },
  };
}
