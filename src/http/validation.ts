// Request validation with the spec's own schemas (OpenAPI 3.1 = JSON Schema 2020-12).
// Bodies are checked strictly: a wrong type or an unknown field is an error, never coerced or
// stripped. Path, query and header values arrive as strings, so there types are coerced.
import { Ajv2020, type ErrorObject, type Options, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { FastifyRequest, FastifySchemaCompiler, preValidationAsyncHookHandler, RouteOptions } from 'fastify';
import { invalidFields, ProblemError } from '../contract/problems.ts';
import { MAX_FLOW_STEPS, writtenStepCount } from '../definitions/steps.ts';

const COMMON: Options = {
  allErrors: true,
  // Each error carries its schema, so that its message can be worded from it (fieldErrors.ts).
  verbose: true,
  useDefaults: true,
  strict: true,
  // A step's kinds are a oneOf of branches that only require the field of their kind, which the
  // properties beside the oneOf define (FlowStep): strict mode would have each branch define it again.
  strictRequired: false,
  // OpenAPI 3.1 writes nullable values as a union: type: [string, 'null'].
  allowUnionTypes: true,
  // OpenAPI annotations that are not JSON Schema keywords, and what a pattern expects in words.
  keywords: ['example', 'xml', 'externalDocs', 'discriminator', 'x-pattern-description'],
};

function ajv(options: Options): Ajv2020 {
  const instance = new Ajv2020({ ...COMMON, ...options });
  addFormats.default(instance);
  return instance;
}

export function validatorCompiler(): FastifySchemaCompiler<unknown> {
  const bodies = ajv({ coerceTypes: false, removeAdditional: false });
  const parameters = ajv({ coerceTypes: 'array', removeAdditional: false });
  return ({ schema, httpPart }) => (httpPart === 'body' ? bodies.compile(schema as object) : finiteOnly(parameters.compile(schema as object)));
}

interface Validate {
  (data: unknown): boolean;
  errors?: ErrorObject[] | null;
}

// AJV coerces "1e309" to Infinity and then skips `maximum` for it (isFinite guards that check),
// so a coerced parameter that came out infinite is refused here.
function finiteOnly(validate: ValidateFunction): Validate {
  const checked: Validate = (data) => {
    if (!validate(data)) {
      checked.errors = validate.errors;
      return false;
    }
    const infinite = Object.entries(data as Record<string, unknown>).find(([, value]) => typeof value === 'number' && !Number.isFinite(value));
    checked.errors = infinite
      ? [{ instancePath: `/${infinite[0]}`, schemaPath: '#/type', keyword: 'type', params: {}, message: 'must be a finite number' }]
      : null;
    return !infinite;
  };
  return checked;
}

/**
 * Adapts a route's schema to how requests arrive: Node delivers header names in lower case
 * (Fastify lower-cases header schemas itself only with its own validator); a query parameter
 * the spec does not know is refused, so that a typo is not silently ignored; and a JSON body
 * schema applies whatever the request's content type (Fastify skips a per-media-type schema
 * when the type differs, which would let a body without one through unchecked), while a body of
 * another type than the one the operation takes is refused (415).
 */
export function adaptRequestSchema(route: RouteOptions): void {
  route.schema ??= {};
  nameRecursiveSchemas(route.schema, `urn:tolstoy:${route.method}:${route.url}`);
  const schema = route.schema as Record<string, JsonSchema | undefined>;
  const content = schema.body?.content as Record<string, { schema: JsonSchema }> | undefined;
  // An operation that reads any body (a webhook) takes any query too: both are its sender's.
  if (content?.['*/*']) {
    schema.body = {};
    return;
  }
  if (content) {
    const [mediaType, body] = Object.entries(content)[0]!;
    schema.body = body.schema;
    route.preValidation = [...[route.preValidation ?? []].flat(), refuseOtherMediaTypes(mediaType)];
    if ((body.schema.properties as Record<string, unknown> | undefined)?.steps) route.preValidation.push(refuseTooManySteps);
  }
  if (schema.headers) schema.headers = lowerCaseHeaderNames(schema.headers);
  schema.querystring = { type: 'object', ...schema.querystring, additionalProperties: false };
}

// fastify-openapi-glue gives every recursive schema (a flow's nested steps) the same $id, which
// AJV refuses to compile twice: each gets one of its own, named by its route and place.
const GLUE_ID = 'http://example.com/fastifySchema';

function nameRecursiveSchemas(node: unknown, name: string): void {
  if (typeof node !== 'object' || node === null) return;
  const schema = node as Record<string, unknown>;
  if (schema.$id === GLUE_ID) schema.$id = name;
  for (const [key, value] of Object.entries(schema)) if (key !== '$id') nameRecursiveSchemas(value, `${name}/${encodeURIComponent(key)}`);
}

interface JsonSchema {
  properties?: Record<string, unknown>;
  required?: string[];
  [keyword: string]: unknown;
}

function lowerCaseHeaderNames(schema: JsonSchema): JsonSchema {
  return {
    ...schema,
    properties: Object.fromEntries(Object.entries(schema.properties ?? {}).map(([name, value]) => [name.toLowerCase(), value])),
    ...(schema.required && { required: schema.required.map((name) => name.toLowerCase()) }),
  };
}

/** A flow's body with more steps than a flow may hold is refused before the validator reads them. */
async function refuseTooManySteps(request: FastifyRequest): Promise<void> {
  const steps = (request.body as { steps?: unknown } | null)?.steps;
  const count = writtenStepCount(steps);
  if (count > MAX_FLOW_STEPS) {
    const message = `hold more than ${MAX_FLOW_STEPS} steps, nested ones included; a flow holds at most ${MAX_FLOW_STEPS}`;
    throw invalidFields('unprocessable-content', [{ in: 'body', pointer: '/steps', message }]);
  }
}

function refuseOtherMediaTypes(mediaType: string): preValidationAsyncHookHandler {
  return async (request) => {
    const sent = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
    if (sent !== undefined && sent !== mediaType && request.body !== undefined) {
      throw new ProblemError('unsupported-media-type', `Send the body as ${mediaType}.`);
    }
  };
}
