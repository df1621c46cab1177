// What the engine tests share: the API with a worker in the same process, on a database of the
// test's own, a real target server, a tenant, and a tool that calls the target.
import type { FastifyInstance } from 'fastify';
import type { EngineSettings } from '../../src/config/settings.ts';
import { buildTestApp, call, createTenant, type Member, type TestApp } from '../helper.ts';
import { startTarget, type Target } from './target.ts';

interface Test {
  teardown(fn: () => unknown): void;
}

export interface World extends TestApp {
  target: Target;
  member: Member;
  toolId: string;
  /** An action of the target tool: `POST /echo/{key}` unless told otherwise. */
  action(fields?: Record<string, unknown>): Promise<string>;
  flow(body: Record<string, unknown>): Promise<{ id: string; version: number }>;
  /** Starts a run and waits (up to 30 s) for it to finish. */
  run(flowId: string, body?: Record<string, unknown>): Promise<any>;
  /** The execution, once it is no longer queued or running (polling, up to `ms`). */
  finished(executionId: string, ms?: number): Promise<any>;
  send: (options: Parameters<typeof call>[2]) => ReturnType<typeof call>;
}

let actions = 0;

export async function world(t: Test, settings: Partial<EngineSettings> = {}, app?: TestApp): Promise<World> {
  const built = app ?? (await buildTestApp(t, { worker: true, ...settings }));
  const target = await startTarget();
  t.teardown(() => target.close());
  const member = await createTenant(built.app);
  const send = (options: Parameters<typeof call>[2]) => call(built.app, member, options);
  const tool = await send({ method: 'POST', url: '/tools', payload: { name: 'Target', baseUrl: target.url } });
  const w: World = {
    ...built,
    target,
    member,
    toolId: tool.data.id,
    send,
    async action(fields = {}) {
      const key = `action-${++actions}`;
      const response = await send({
        method: 'POST',
        url: '/actions',
        payload: { toolId: tool.data.id, name: key, key, method: 'POST', endpoint: `/echo/${key}`, ...fields },
      });
      if (response.statusCode !== 201) throw new Error(`creating an action failed: ${response.body}`);
      return response.data.id;
    },
    async flow(body) {
      const response = await send({ method: 'POST', url: '/flows', payload: { name: 'Flow', ...body } });
      if (response.statusCode !== 201) throw new Error(`creating a flow failed: ${response.body}`);
      return response.data;
    },
    async run(flowId, body = {}) {
      const started = await send({ method: 'POST', url: `/flows/${flowId}/executions`, payload: body, headers: { prefer: 'wait=30' } });
      if (started.statusCode !== 200 && started.statusCode !== 202) throw new Error(`starting a run failed: ${started.body}`);
      return w.finished(started.data.id);
    },
    async finished(executionId, ms = 30_000) {
      const until = Date.now() + ms;
      for (;;) {
        const execution = await send({ method: 'GET', url: `/executions/${executionId}` });
        if (!['queued', 'running'].includes(execution.data.status)) return execution.data;
        if (Date.now() > until) throw new Error(`execution ${executionId} is still ${execution.data.status} after ${ms} ms`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
  };
  return w;
}

export type { FastifyInstance };
