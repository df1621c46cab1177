import type { PoolConfig } from 'pg';

// Neon-style URLs carry libpq parameters that node-postgres reads differently:
// `sslmode=require` is verified as `verify-full` (the certificate and host are checked, which
// Neon passes), said explicitly here so pg does not warn; `channel_binding=require` is not
// read by pg at all and becomes its `enableChannelBinding` option.
export function connectionConfig(url: string): PoolConfig {
  const parsed = new URL(url);
  const params = parsed.searchParams;
  const channelBinding = params.get('channel_binding') === 'require';
  params.delete('channel_binding');
  if (['prefer', 'require', 'verify-ca'].includes(params.get('sslmode') ?? '')) params.set('sslmode', 'verify-full');
  return { connectionString: parsed.toString(), enableChannelBinding: channelBinding };
}
