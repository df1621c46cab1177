// What the benchmark asks of every system: the same requests, from many tenants, drawn from a
// seeded generator so that every system sees the same mix.
import type { Fixture, Tenant } from './seed.ts';

export interface BenchRequest {
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  headers: Record<string, string>;
  body?: string;
}

type Draw = (fixture: Fixture, random: () => number) => BenchRequest;

const pick = <T>(items: T[], random: () => number): T => items[Math.floor(random() * items.length)]!;
// Every system authenticates as production Tolstoy does: with the member's API key.
const as = (tenant: Tenant, body?: unknown) => ({
  authorization: `Bearer ${tenant.key}`,
  ...(body === undefined ? {} : { 'content-type': 'application/json' }),
});

const getFlow: Draw = ({ tenants }, random) => {
  const tenant = pick(tenants, random);
  return { method: 'GET', path: `/flows/${pick(tenant.flowIds, random)}`, headers: as(tenant) };
};
const listFlows: Draw = ({ tenants }, random) => {
  const tenant = pick(tenants, random);
  return { method: 'GET', path: '/flows?limit=20', headers: as(tenant) };
};
const listFlowsLaterPage: Draw = ({ tenants }, random) => {
  const tenant = pick(tenants, random);
  return { method: 'GET', path: `/flows?limit=20&cursor=${tenant.laterPage}`, headers: as(tenant) };
};
const createTool: Draw = ({ tenants }, random) => {
  const tenant = pick(tenants, random);
  const body = { name: 'Bench tool', baseUrl: 'https://bench.example.com/v2', authType: 'apiKey' };
  return { method: 'POST', path: '/tools', headers: as(tenant, body), body: JSON.stringify(body) };
};
const updateFlow: Draw = ({ tenants }, random) => {
  const tenant = pick(tenants, random);
  const body = { name: 'Renamed by the benchmark' };
  return { method: 'PUT', path: `/flows/${pick(tenant.flowIds, random)}`, headers: as(tenant, body), body: JSON.stringify(body) };
};
const listLogsByFlow: Draw = ({ tenants }, random) => {
  const tenant = pick(tenants, random);
  return { method: 'GET', path: `/execution-logs?flowId=${pick(tenant.flowIds, random)}`, headers: as(tenant) };
};
// 80% reads, 20% writes.
const mixed: Draw = (fixture, random) => {
  const roll = random();
  const draw =
    roll < 0.4 ? getFlow : roll < 0.55 ? listFlows : roll < 0.6 ? listFlowsLaterPage : roll < 0.8 ? listLogsByFlow : roll < 0.9 ? createTool : updateFlow;
  return draw(fixture, random);
};

export const SCENARIOS: Record<string, { description: string; draw: Draw }> = {
  getFlow: { description: 'GET /flows/{id}', draw: getFlow },
  listFlows: { description: 'GET /flows, first page', draw: listFlows },
  listFlowsLaterPage: { description: 'GET /flows, fifth page through the cursor', draw: listFlowsLaterPage },
  createTool: { description: 'POST /tools', draw: createTool },
  updateFlow: { description: 'PUT /flows/{id}', draw: updateFlow },
  listLogsByFlow: { description: 'GET /execution-logs?flowId=', draw: listLogsByFlow },
  mixed: { description: '80% reads, 20% writes of the above', draw: mixed },
};

/** A small, fast, seeded generator (mulberry32). */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
