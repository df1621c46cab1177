// Every system answers every scenario identically: the same status, content type and body for the
// same request. Where a write makes what differs by nature (a new id, a timestamp, a version
// another system already raised), those fields are masked before comparing, and so is the
// request id that Tolstoy's problem documents carry (new for every request).
import { newKey } from '../src/access/keyFormat.ts';
import { type BenchRequest, SCENARIOS, seeded } from './scenarios.ts';
import type { Fixture } from './seed.ts';
import type { RunningSystem } from './systems.ts';

const MASKED = ['id', 'createdAt', 'updatedAt', 'version'];

interface Answer {
  status: number;
  type: string | null;
  body: string;
}

async function send(system: RunningSystem, request: BenchRequest): Promise<Answer> {
  const response = await fetch(system.base + request.path, { method: request.method, headers: request.headers, body: request.body });
  return { status: response.status, type: response.headers.get('content-type'), body: await response.text() };
}

function comparable(answer: Answer, request: BenchRequest): string {
  if (answer.body === '') return JSON.stringify(answer);
  const body = JSON.parse(answer.body) as Record<string, unknown>;
  if (answer.status >= 400) delete body.requestId;
  else if (request.method !== 'GET') for (const field of MASKED) if (field in body) body[field] = '(masked)';
  return JSON.stringify({ ...answer, body });
}

/** The requests each system is asked: a few of every scenario, a foreign flow, and keys that are not keys. */
export function equivalenceRequests(fixture: Fixture, perScenario = 4): BenchRequest[] {
  const requests: BenchRequest[] = [];
  for (const { draw } of Object.values(SCENARIOS)) {
    const random = seeded(7);
    for (let i = 0; i < perScenario; i++) requests.push(draw(fixture, random));
  }
  const [first] = fixture.tenants;
  const path = `/flows/${first!.flowIds[0]}`;
  requests.push({ method: 'GET', path: `/flows/${fixture.foreignFlow(first!)}`, headers: { authorization: `Bearer ${first!.key}` } });
  // A key of the right shape that no one holds, and one whose checksum does not hold.
  requests.push({ method: 'GET', path, headers: { authorization: `Bearer ${newKey().key}` } });
  requests.push({ method: 'GET', path, headers: { authorization: `Bearer ${first!.key.slice(0, -1)}${first!.key.endsWith('a') ? 'b' : 'a'}` } });
  requests.push({ method: 'GET', path, headers: {} });
  return requests;
}

/** The differences found; none means every system answered every request alike. */
export async function differences(systems: RunningSystem[], requests: BenchRequest[]): Promise<string[]> {
  const found: string[] = [];
  for (const request of requests) {
    const answers: string[] = [];
    for (const system of systems) answers.push(comparable(await send(system, request), request));
    answers.forEach((answer, i) => {
      if (answer !== answers[0])
        found.push(`${request.method} ${request.path}: ${systems[i]!.name} answered ${answer.slice(0, 400)}, ${systems[0]!.name} ${answers[0]!.slice(0, 400)}`);
    });
  }
  return found;
}
