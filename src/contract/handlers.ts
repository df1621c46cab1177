// The operations' types, derived from the types generated from the contract: an operation's
// input and output are exactly what the spec declares for it.

import type { VerifiedKeys } from '../access/callers.ts';
import type { Caller, OrganizationOperation, Reader, ReadOperation, Tenant } from '../access/tenancy.ts';
import type { AuthSettings } from '../config/settings.ts';
import type { Keyring } from '../crypto/keyring.ts';
import type { Database } from '../db/client.ts';
import type { RunOwner } from '../engine/runs/runs.ts';
import type { operations } from '../generated/openapi.ts';

// The contract's `webhooks` (their operationIds end in `Event`) are requests Tolstoy sends, not operations it serves.
export type OperationId = Exclude<keyof operations, `${string}Event`>;
type Operation<Id extends OperationId> = operations[Id];

type PathOf<Id extends OperationId> = Operation<Id>['parameters'] extends { path: infer Path } ? NonNullable<Path> : never;
type QueryOf<Id extends OperationId> = Operation<Id>['parameters'] extends { query?: infer Query } ? NonNullable<Query> : never;
// Node delivers header names in lower case.
type HeadersOf<Id extends OperationId> = Operation<Id>['parameters'] extends { header?: infer Headers }
  ? { [Name in keyof NonNullable<Headers> as Lowercase<Name & string>]: NonNullable<Headers>[Name] }
  : Record<string, never>;
type BodyOf<Id extends OperationId> =
  Operation<Id> extends { requestBody: { content: { 'application/json': infer Body } } }
    ? Body
    : Operation<Id> extends { requestBody: { content: { 'application/merge-patch+json': infer Patch } } }
      ? Patch
      : undefined;
type JsonOf<Response> = Response extends { content: { 'application/json': infer Body } }
  ? Body
  : Response extends { content: { 'text/html': infer Page } }
    ? Page
    : never;

export interface Input<Id extends OperationId> {
  params: PathOf<Id>;
  query: QueryOf<Id>;
  headers: HeadersOf<Id>;
  body: BodyOf<Id>;
}

export type Output<Id extends OperationId> = Operation<Id>['responses'] extends { 200: infer Ok }
  ? JsonOf<Ok>
  : Operation<Id>['responses'] extends { 201: infer Created }
    ? JsonOf<Created>
    : Operation<Id>['responses'] extends { 202: infer Accepted }
      ? JsonOf<Accepted>
      : undefined;

/**
 * An answer whose status and headers depend on the request (a run that finished within
 * `Prefer: wait` is 200, one still queued 202); both are ones the contract declares.
 */
export class Answer<Body> {
  /** Undefined for the operation's usual success status. */
  readonly status: number | undefined;
  readonly body: Body;
  readonly headers: Record<string, string>;

  constructor(status: number | undefined, body: Body, headers: Record<string, string> = {}) {
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

export interface ServiceContext {
  db: Database;
  /** Seals and opens tool credentials. */
  keyring: Keyring;
  /** Where executions are queued, and how their progress is heard of. */
  runs: RunOwner;
  /** The keys this node has verified, to forget when one is revoked or its member changes. */
  keys: Pick<VerifiedKeys, 'forgetKey' | 'forgetMember' | 'forgetOrganization'>;
  /** Where the API is reached from outside: TOLSTOY_PUBLIC_URL, or the request's own scheme and host. */
  origin: string;
}

/** An operation on organizations themselves: whoever the credentials say, if anyone. */
export interface OrganizationContext extends ServiceContext {
  caller: Caller;
  auth: Pick<AuthSettings, 'mode' | 'signup'>;
}

/** A write's: the caller is known to be a member. */
export interface TenantContext extends ServiceContext {
  tenant: Tenant;
}

/** A read's: the caller's membership is part of the query (see src/access/tenancy.ts). */
export interface ReaderContext extends ServiceContext {
  reader: Reader;
}

/** The index, health, readiness, the pages of the problem types, and webhooks, which need no credentials. */
export type ServiceOperation = 'getIndex' | 'getHealth' | 'getReadiness' | 'listProblemTypes' | 'getProblemType' | 'receiveWebhook';

// The contract's security requirements decide the same at run time (src/http/routes.ts).
type ContextOf<Id extends OperationId> = Id extends ServiceOperation
  ? ServiceContext
  : Id extends OrganizationOperation
    ? OrganizationContext
    : Id extends ReadOperation
      ? ReaderContext
      : TenantContext;

export type Handler<Id extends OperationId> =
  Output<Id> extends undefined
    ? (input: Input<Id>, context: ContextOf<Id>) => Promise<undefined>
    : (input: Input<Id>, context: ContextOf<Id>) => Promise<Output<Id> | Answer<Output<Id>>>;

export type Handlers = { [Id in OperationId]: Handler<Id> };
