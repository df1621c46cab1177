// @tolstoy/client: the Tolstoy API's TypeScript client. The types are generated from the API's
// contract (openapi.ts, by openapi-typescript); requests go through openapi-fetch, so every path,
// parameter, body and answer is checked by the compiler.
import createClient, { type Client, type ClientOptions } from 'openapi-fetch';
import type { components, paths } from './openapi.js';

export type { components, operations, paths } from './openapi.js';

/** An RFC 9457 problem document: every error Tolstoy answers. */
export type Problem = components['schemas']['Problem'];

export interface TolstoyOptions extends ClientOptions {
  /** Where the API is, e.g. `https://tolstoy.example.com` (default `http://localhost:3000`). */
  baseUrl?: string;
  /** An API key (`tsk_…`), sent as `Authorization: Bearer` with every request. */
  apiKey?: string;
}

export type TolstoyClient = Client<paths>;

/** A client for the API at `baseUrl`, acting as the member whose `apiKey` it sends. */
export function createTolstoyClient({ baseUrl = 'http://localhost:3000', apiKey, headers, ...options }: TolstoyOptions = {}): TolstoyClient {
  const authorization = apiKey === undefined ? {} : { Authorization: `Bearer ${apiKey}` };
  return createClient<paths>({ ...options, baseUrl, headers: { ...toRecord(headers), ...authorization } });
}

function toRecord(headers: ClientOptions['headers']): Record<string, string> {
  if (headers === undefined) return {};
  if (headers instanceof Headers || Array.isArray(headers)) return Object.fromEntries(new Headers(headers as HeadersInit));
  return Object.fromEntries(Object.entries(headers).flatMap(([name, value]) => (value == null ? [] : [[name, String(value)]])));
}
