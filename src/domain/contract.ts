// The operations' types, derived from the types generated from the contract: an operation's
// input and output are exactly what the spec declares for it.
import type { Database } from '../db/client.ts';
import type { operations } from '../generated/openapi.ts';
import type { Reader, ReadOperation, Tenant } from './tenancy.ts';

export type OperationId = keyof operations;
type Operation<Id extends OperationId> = operations[Id];

type PathOf<Id extends OperationId> = Operation<Id>['parameters'] extends { path: infer Path } ? NonNullable<Path> : never;
type QueryOf<Id extends OperationId> = Operation<Id>['parameters'] extends { query?: infer Query } ? NonNullable<Query> : never;
type BodyOf<Id extends OperationId> = Operation<Id> extends { requestBody: { content: { 'application/json': infer Body } } } ? Body : undefined;
type JsonOf<Response> = Response extends { content: { 'application/json': infer Body } } ? Body : never;

export interface Input<Id extends OperationId> {
  params: PathOf<Id>;
  query: QueryOf<Id>;
  body: BodyOf<Id>;
}

export type Output<Id extends OperationId> = Operation<Id>['responses'] extends { 200: infer Ok }
  ? JsonOf<Ok>
  : Operation<Id>['responses'] extends { 201: infer Created }
    ? JsonOf<Created>
    : undefined;

export interface ServiceContext {
  db: Database;
}

/** A write's: the caller is known to be a member. */
export interface TenantContext extends ServiceContext {
  tenant: Tenant;
}

/** A read's: the caller's membership is part of the query (see tenancy.ts). */
export interface ReaderContext extends ServiceContext {
  reader: Reader;
}

type ContextOf<Id extends OperationId> = Operation<Id>['parameters'] extends { header: { 'X-Org-ID': string } }
  ? Id extends ReadOperation
    ? ReaderContext
    : TenantContext
  : ServiceContext;

export type Handler<Id extends OperationId> = (input: Input<Id>, context: ContextOf<Id>) => Promise<Output<Id>>;

export type Handlers = { [Id in OperationId]: Handler<Id> };
