// One attempt of one step: its inputs rendered from the template, checked against the action's
// input schema, turned into the action's HTTP request with the tool's credentials (prepared), then
// sent and the answer classified. Between the two, the call is reserved under the tool's rate
// limit (kinds.ts, toolLimits.ts). The mapping from inputs to the request (README, "Running flows"):
// - the URL is the tool's baseUrl followed by the action's endpoint, whose `{name}` placeholders
//   take the inputs of that name (percent-encoded; a non-string value as JSON);
// - the headers are the action's, then the credentials', then `Idempotency-Key:
//   <executionId>:<stepPath>` so that a target can drop a call repeated after a crash;
// - the other inputs go in the query string for GET and DELETE (an array as repeated parameters,
//   an object as JSON), and as the JSON body otherwise.

import type { StoredStep } from '../definitions/steps.ts';
import { routesRequest, staysUnder } from '../definitions/toolRequests.ts';
import type { Evaluated, Evaluator } from './evaluator.ts';
import { type Outbound, OutboundError, type OutboundRequest, type OutboundResponse } from './outbound.ts';
import type { ActionCall, ClaimedRun, Failure } from './runs/progress.ts';
import { type Authenticator, CredentialsFailure } from './toolAuth.ts';

export interface Attempt {
  status: 'completed' | 'failed';
  inputs?: unknown;
  request?: OutboundRequest & { body?: unknown };
  response?: OutboundResponse;
  error?: Failure;
  /** Whether another attempt may succeed (network errors, timeouts, 408, 429, 5xx). */
  retryable: boolean;
  /** What the answer's Retry-After asked for, in milliseconds. */
  retryAfterMs?: number;
  durationMs: number;
  /** The credentials' values this attempt sent, never to be recorded. */
  secrets?: string[];
}

export interface StepTools {
  outbound: Outbound;
  authenticator: Authenticator;
  /** Evaluates templates and checks inputs, within bounds. */
  evaluator: Evaluator;
  /** Told of every attempt that ran, for the metrics. */
  attempted: (actionId: string, status: string, durationMs: number) => void;
}

/** An attempt ready to be sent: its request built and authenticated, for the tool it calls. */
export interface Prepared {
  toolId: string;
  inputs: unknown;
  request: OutboundRequest;
  /** The request as recorded: credentials left out, the body as JSON. */
  shown: OutboundRequest & { body?: unknown };
  secrets: string[];
  started: number;
}

/**
 * The request of an attempt with the step's inputs as the evaluator rendered and checked them,
 * with the tool's credentials on it; or the attempt, failed, when it cannot be made.
 */
export async function prepareAttempt(
  run: ClaimedRun,
  step: StoredStep,
  path: string,
  evaluated: Evaluated,
  tools: StepTools,
  signal: AbortSignal,
): Promise<Prepared | Attempt> {
  const started = performance.now();
  const fail = (code: string, message: string, more: Partial<Attempt> = {}): Attempt => failure(started, code, message, more);
  if (evaluated.status === 'failed') return fail(evaluated.code, evaluated.message, evaluated.value === undefined ? {} : { inputs: evaluated.value });
  if (evaluated.status !== 'ready') throw new Error(`Step ${step.key} was skipped; it has no attempt.`);
  const inputs = evaluated.value;
  const action = run.actions.get(step.actionId!);
  if (!action) return fail('action-missing', `The action ${step.actionId} was deleted; the step cannot run.`, { inputs });
  // Refused when the action is written; an action stored before that rule fails here.
  const routing = Object.keys(action.headers).find(routesRequest);
  if (routing) return fail('invalid-action', `The action's header ${routing} routes or frames the request; remove it from the action.`, { inputs });
  let request: OutboundRequest;
  try {
    request = requestFor(run, path, action, inputs as Record<string, unknown>);
  } catch (error) {
    return fail('invalid-inputs', (error as Error).message, { inputs });
  }
  let authenticated: Awaited<ReturnType<Authenticator['apply']>>;
  try {
    authenticated = await tools.authenticator.apply(run.orgId, action.tool, request, signal);
  } catch (error) {
    if (error instanceof CredentialsFailure) return fail('credentials-error', error.message, { inputs, retryable: error.retryable });
    throw error;
  }
  const shown = { ...authenticated.shown, body: request.body === undefined ? null : JSON.parse(request.body) };
  return { toolId: action.tool.id, inputs, request: authenticated.request, shown, secrets: authenticated.secrets, started };
}

export function isPrepared(attempt: Prepared | Attempt): attempt is Prepared {
  return 'toolId' in attempt;
}

/** Sends a prepared attempt and classifies the answer. */
export async function sendAttempt(run: ClaimedRun, step: StoredStep, prepared: Prepared, tools: StepTools, signal: AbortSignal): Promise<Attempt> {
  const { inputs, shown, secrets, started } = prepared;
  try {
    const response = await tools.outbound.call(run.orgId, prepared.request, signal, step.timeoutMs ?? 30_000);
    if (response.status >= 200 && response.status < 300) {
      return { status: 'completed', inputs, request: shown, response, retryable: false, durationMs: elapsedSince(started), secrets };
    }
    const retryable = response.status === 408 || response.status === 429 || response.status >= 500;
    const retryAfter = retryAfterMs(response.headers['retry-after']);
    return failure(started, 'http-status', `The action answered ${response.status}.`, {
      inputs,
      request: shown,
      response,
      retryable,
      retryAfterMs: retryAfter,
      secrets,
    });
  } catch (error) {
    if (!(error instanceof OutboundError)) throw error;
    const retryable = error.code === 'network-error' || error.code === 'timeout';
    return failure(started, error.code, error.message, { inputs, request: shown, retryable, secrets });
  }
}

function failure(started: number, code: string, message: string, more: Partial<Attempt>): Attempt {
  return { status: 'failed', error: { code, message }, retryable: false, durationMs: elapsedSince(started), ...more };
}

function elapsedSince(started: number): number {
  return Math.round(performance.now() - started);
}

function requestFor(run: ClaimedRun, stepPath: string, action: ActionCall, inputs: Record<string, unknown>): OutboundRequest {
  const rest = { ...inputs };
  const path = action.endpoint.replace(/\{([^}]+)\}/g, (_placeholder, name: string) => {
    if (!(name in rest)) throw new Error(`The endpoint ${action.endpoint} needs the input "${name}", which the step's inputs do not have.`);
    const value = rest[name];
    delete rest[name];
    return encodeURIComponent(typeof value === 'string' ? value : JSON.stringify(value));
  });
  if (!staysUnder(action.tool.baseUrl, path)) {
    throw new Error(
      `The endpoint ${action.endpoint} with these inputs is ${path}, which does not stay under the tool's base URL ${action.tool.baseUrl}: placeholder values may not be "." or ".." (even percent-encoded).`,
    );
  }
  const url = new URL(`${action.tool.baseUrl.replace(/\/+$/, '')}${path}`);
  const headers: Record<string, string> = { ...lowerCased(action.headers), 'idempotency-key': `${run.id}:${stepPath}`, 'user-agent': 'Tolstoy' };
  if (action.method === 'GET' || action.method === 'DELETE') {
    for (const [name, value] of Object.entries(rest)) {
      for (const item of Array.isArray(value) ? value : [value]) url.searchParams.append(name, typeof item === 'string' ? item : JSON.stringify(item));
    }
    return { method: action.method, url: url.toString(), headers };
  }
  headers['content-type'] ??= 'application/json';
  return { method: action.method, url: url.toString(), headers, body: JSON.stringify(rest) };
}

function lowerCased(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
}

// Retry-After is seconds or an HTTP date (RFC 9110 §10.2.3).
function retryAfterMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
