// The HTTP calls steps make. Private, loopback, link-local and metadata addresses are refused
// (SSRF) unless allowed: the check runs on the address the socket actually connects to (in the
// connection's own DNS lookup), so a name that resolves to a public address when asked and to a
// private one when connecting (DNS rebinding) gets nowhere. Redirects are not followed: a 3xx is
// the answer. Bodies over the limit are cut off and fail the call, and so do JSON bodies nested
// deeper than RESPONSE_NESTING: JSON.parse reads any depth, but every recursive step after it
// (scrubbing, the budget's count, the evaluator's messages, the API's answers) overflows its stack
// on a few hundred KB of `[[[[…`, and a worker that throws there hands the run on again and again.
import { lookup as resolve } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, request } from 'undici';
import { nestingDepth } from '../http/jsonBody.ts';

/** How deeply a JSON answer may nest arrays and objects; far more than APIs answer, far less than stacks hold. */
export const RESPONSE_NESTING = 512;

export interface OutboundRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

export interface OutboundResponse {
  status: number;
  headers: Record<string, string>;
  /** Parsed when the answer says it is JSON, text otherwise. */
  body: unknown;
}

export type OutboundErrorCode = 'blocked-target' | 'network-error' | 'timeout' | 'response-too-large' | 'response-too-deep' | 'cancelled';

export class OutboundError extends Error {
  readonly code: OutboundErrorCode;

  constructor(code: OutboundErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export interface OutboundOptions {
  allowPrivateTargets: boolean;
  responseLimitBytes: number;
}

/**
 * Whether an address is on the public internet (ipaddr.js's "unicast"; IPv4-mapped IPv6 read as
 * IPv4). IPv4-compatible IPv6 addresses (::/96, deprecated by RFC 4291 §2.5.5.1) are not: ipaddr.js
 * calls them unicast, but some stacks route `::7f00:1` to 127.0.0.1, and no public API needs one.
 */
export function isPublicAddress(address: string): boolean {
  const parsed = ipaddr.process(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).parts.slice(0, 6).every((part) => part === 0)) return false;
  return parsed.range() === 'unicast';
}

const BLOCKED = 'TOLSTOY_BLOCKED_TARGET';

/** A DNS lookup that answers only public addresses, for the connections of an undici Agent. */
export function guardedLookup(): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, '', 0);
      const allowed = addresses.filter((candidate) => isPublicAddress(candidate.address));
      if (allowed.length === 0) {
        const refused = Object.assign(new Error(`${hostname} resolves to ${addresses.map((a) => a.address).join(', ')}, which is not a public address`), {
          code: BLOCKED,
        });
        return callback(refused, '', 0);
      }
      // biome-ignore lint/suspicious/noExplicitAny: net asks for one address or, with `all`, for all of them
      if ((options as { all?: boolean }).all) return (callback as any)(null, allowed);
      callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  };
}

// Organizations whose connections a worker keeps; the one that called least recently lets its go.
const KEPT_ORGANIZATIONS = 256;

/**
 * Makes calls for steps; one per worker, so that connections to the same API are kept alive. Each
 * organization has connections of its own (64 to an origin): one organization's calls in flight,
 * up to 50 in each of its runs, never hold those of another that calls the same API.
 */
export class Outbound {
  readonly #options: OutboundOptions;
  /** By organization, the one that called last at the end. */
  readonly #agents = new Map<string, Agent>();

  constructor(options: OutboundOptions) {
    this.#options = options;
  }

  #agentOf(orgId: string): Agent {
    const agent =
      this.#agents.get(orgId) ?? new Agent({ connections: 64, ...(!this.#options.allowPrivateTargets && { connect: { lookup: guardedLookup() } }) });
    this.#agents.delete(orgId);
    this.#agents.set(orgId, agent);
    if (this.#agents.size > KEPT_ORGANIZATIONS) {
      const [oldest, idle] = this.#agents.entries().next().value!;
      this.#agents.delete(oldest);
      // Its calls in flight end first.
      void idle.close().catch(() => undefined);
    }
    return agent;
  }

  async call(orgId: string, call: OutboundRequest, signal: AbortSignal, timeoutMs: number): Promise<OutboundResponse> {
    const url = new URL(call.url);
    refuseLiteralTarget(url, this.#options.allowPrivateTargets);
    const deadline = AbortSignal.timeout(timeoutMs);
    try {
      const response = await request(url, {
        method: call.method as 'GET',
        headers: call.headers,
        body: call.body,
        dispatcher: this.#agentOf(orgId),
        signal: AbortSignal.any([signal, deadline]),
      });
      const headers = Object.fromEntries(
        Object.entries(response.headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(', ') : String(value)]),
      );
      const text = await this.#read(response.body, headers['content-length']);
      return { status: response.statusCode, headers, body: parsed(text, headers['content-type']) };
    } catch (error) {
      throw outboundError(error, { cancelled: signal.aborted, timedOut: deadline.aborted, timeoutMs });
    }
  }

  async #read(body: AsyncIterable<Buffer> & { destroy(error?: Error): void }, declaredLength: string | undefined): Promise<string> {
    const limit = this.#options.responseLimitBytes;
    const tooLarge = () => new OutboundError('response-too-large', `The response is larger than ${limit} bytes (TOLSTOY_STEP_RESPONSE_LIMIT_BYTES).`);
    if (declaredLength !== undefined && Number(declaredLength) > limit) {
      body.destroy();
      throw tooLarge();
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body) {
      size += chunk.length;
      if (size > limit) {
        body.destroy();
        throw tooLarge();
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  async close(): Promise<void> {
    await Promise.all([...this.#agents.values()].map((agent) => agent.close()));
    this.#agents.clear();
  }
}

/** Refuses a URL whose host is an address (not a name) that is not public, unless private targets are allowed. */
export function refuseLiteralTarget(url: URL, allowPrivateTargets: boolean): void {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!allowPrivateTargets && isIP(host) && !isPublicAddress(host)) {
    throw new OutboundError('blocked-target', `${host} is not a public address; steps may not call private, loopback, link-local or metadata addresses.`);
  }
}

function parsed(text: string, contentType: string | undefined): unknown {
  if (!/\bjson\b/i.test(contentType ?? '')) return text;
  if (nestingDepth(text) > RESPONSE_NESTING)
    throw new OutboundError('response-too-deep', `The response's JSON nests arrays and objects deeper than ${RESPONSE_NESTING} levels.`);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function outboundError(error: unknown, { cancelled, timedOut, timeoutMs }: { cancelled: boolean; timedOut: boolean; timeoutMs: number }): OutboundError {
  if (error instanceof OutboundError) return error;
  if (cancelled) return new OutboundError('cancelled', 'The request was aborted: the execution was cancelled.');
  if (timedOut) return new OutboundError('timeout', `No complete answer within ${timeoutMs} ms.`);
  const failure = error as Error & { code?: string; cause?: { code?: string; message?: string } };
  const code = failure.code ?? failure.cause?.code;
  if (code === BLOCKED || failure.cause?.message?.includes('is not a public address')) {
    return new OutboundError(
      'blocked-target',
      `${(failure.cause?.message ?? failure.message).replace(/^.*?(\S+ resolves)/, '$1')}; steps may not call private, loopback, link-local or metadata addresses.`,
    );
  }
  return new OutboundError('network-error', `The request failed: ${failure.message}${code ? ` (${code})` : ''}.`);
}
