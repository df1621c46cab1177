// The load generator, run as its own process so it does not share a CPU queue with a server:
// autocannon drives one scenario against one system and prints its figures as JSON.
// Usage: node bench/load.ts <base URL> <scenario> <fixture.json> <seconds> <connections> <seed>
import { readFile } from 'node:fs/promises';
import autocannon from 'autocannon';
import { SCENARIOS, seeded } from './scenarios.ts';
import type { Fixture, Tenant } from './seed.ts';

export interface LoadResult {
  requests: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
}

const [url, scenario, fixtureFile, seconds, connections, seed] = process.argv.slice(2);
const tenants: Tenant[] = JSON.parse(await readFile(fixtureFile!, 'utf8')).tenants;
const fixture: Fixture = { tenants, foreignFlow: (tenant) => tenants[(tenants.indexOf(tenant) + 1) % tenants.length]!.flowIds[0]! };
const random = seeded(Number(seed));
const draw = SCENARIOS[scenario!]!.draw;

const result = await autocannon({
  url: url!,
  duration: Number(seconds),
  connections: Number(connections),
  requests: [{ setupRequest: (request) => ({ ...request, ...draw(fixture, random) }) }],
});
const figures: LoadResult = {
  requests: result.requests.total,
  rps: result.requests.average,
  p50Ms: result.latency.p50,
  p99Ms: result.latency.p99,
  errors: result.errors + result.timeouts,
  non2xx: result.non2xx,
};
console.log(JSON.stringify(figures));
