import pg, { type PoolConfig } from 'pg';
import type { DatabaseTimeouts } from '../config/settings.ts';

export const DEFAULT_TIMEOUTS: DatabaseTimeouts = { connectMs: 5000, statementMs: 5000, idleInTransactionMs: 10_000 };

// How much longer than its own statement timeout the server gets to answer before Tolstoy
// decides that it has stalled (a frozen host, a partition) and drops the connection.
export const STALL_GRACE_MS = 1000;

/** The error of a query whose server stopped answering; the connection is dropped with it. */
export const STALLED = 'TOLSTOY_DATABASE_STALLED';

export interface ConnectionOptions {
  timeouts?: DatabaseTimeouts;
  /** Whether the server takes the timeouts as startup parameters (a transaction-mode PgBouncer does not). */
  startupParameters?: boolean;
}

// Neon-style URLs carry libpq parameters that node-postgres reads differently:
// `sslmode=require` is verified as `verify-full` (the certificate and host are checked, which
// Neon passes), said explicitly here so pg does not warn; `channel_binding=require` is not
// read by pg at all and becomes its `enableChannelBinding` option.
export function connectionConfig(url: string, { timeouts = DEFAULT_TIMEOUTS, startupParameters = true }: ConnectionOptions = {}): PoolConfig {
  const parsed = new URL(url);
  const params = parsed.searchParams;
  const channelBinding = params.get('channel_binding') === 'require';
  params.delete('channel_binding');
  if (['prefer', 'require', 'verify-ca'].includes(params.get('sslmode') ?? '')) params.set('sslmode', 'verify-full');
  return {
    connectionString: parsed.toString(),
    enableChannelBinding: channelBinding,
    // Bounds opening a connection, and waiting for a free one in a pool.
    connectionTimeoutMillis: timeouts.connectMs,
    keepAlive: true,
    ...(startupParameters && {
      statement_timeout: timeouts.statementMs,
      idle_in_transaction_session_timeout: timeouts.idleInTransactionMs,
    }),
    // 0 leaves statements unbounded, as PostgreSQL's own setting does (for migrations).
    ...(timeouts.statementMs > 0 && { Client: stallGuarded(timeouts.statementMs + STALL_GRACE_MS) }),
  };
}

/**
 * A pg client that drops its connection when a query gets no answer within `patienceMs`. A
 * stalled server keeps TCP open and never answers, so neither its own statement timeout nor a
 * socket error ever ends the wait; dropping the connection fails the query (and any queued
 * behind it) and tells the pool not to reuse it.
 */
function stallGuarded(patienceMs: number): typeof pg.Client {
  return class StallGuardedClient extends pg.Client {
    // pg's query() has many overloads; every one ends either in a callback or a returned promise.
    // biome-ignore lint/suspicious/noExplicitAny: each overload returns its own type, passed through as it is
    override query(...args: unknown[]): any {
      const timer = setTimeout(() => this.#drop(patienceMs), patienceMs);
      const done = () => clearTimeout(timer);
      const last = args.length - 1;
      const callback = args[last];
      if (typeof callback === 'function') {
        args[last] = (...results: unknown[]) => {
          done();
          callback(...results);
        };
      }
      let result: unknown;
      try {
        result = (super.query as (...a: unknown[]) => unknown)(...args);
      } catch (error) {
        done();
        throw error;
      }
      if (result instanceof Promise) result.then(done, done);
      else if (typeof callback !== 'function') done();
      return result;
    }

    #drop(patienceMs: number): void {
      const error = Object.assign(new Error(`The database did not answer within ${patienceMs} ms.`), { code: STALLED });
      (this as unknown as { connection: { stream: { destroy(error: Error): void } } }).connection.stream.destroy(error);
    }
  };
}

/**
 * Whether the server at `url` takes the timeouts as startup parameters. PostgreSQL does; a
 * transaction-mode PgBouncer (Neon's pooler among them) refuses the connection instead. A server
 * that cannot be asked now is assumed to take them.
 */
export async function acceptsStartupParameters(url: string, timeouts: DatabaseTimeouts = DEFAULT_TIMEOUTS): Promise<boolean> {
  const client = new pg.Client(connectionConfig(url, { timeouts }));
  client.on('error', () => undefined);
  try {
    await client.connect();
    return true;
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    return !(code === '08P01' && /unsupported startup parameter/i.test(message ?? ''));
  } finally {
    await client.end().catch(() => undefined);
  }
}
