// Holds every response a test receives to the contract: the status must be one the operation
// declares, the content type the one declared for it, and the body must match its schema.
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { loadContract } from '../src/http/spec.ts';

export const { document } = loadContract();

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats.default(ajv);
ajv.addSchema(document, 'openapi');

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

export interface OperationRef {
  path: string;
  method: string;
  operationId: string;
  operation: any;
}

export const operations: OperationRef[] = Object.entries(document.paths).flatMap(([path, item]) =>
  Object.entries(item)
    .filter(([method]) => METHODS.includes(method))
    .map(([method, operation]) => ({ path, method, operationId: (operation as any).operationId, operation })),
);

const matchers = operations.map((op) => ({ op, pattern: new RegExp(`^${op.path.replace(/{\w+}/g, '[^/]+')}$`) }));

export function operationFor(method: string, url: string): OperationRef | undefined {
  const path = url.split('?')[0]!;
  return matchers.find(({ op, pattern }) => op.method === method.toLowerCase() && pattern.test(path))?.op;
}

const validators = new Map<string, ValidateFunction>();

function validatorFor(pointer: string): ValidateFunction {
  let validate = validators.get(pointer);
  if (!validate) {
    validate = ajv.compile({ $ref: `openapi#${pointer}` });
    validators.set(pointer, validate);
  }
  return validate;
}

const escapeSegment = (segment: string) => segment.replaceAll('~', '~0').replaceAll('/', '~1');

export function resolve(ref: string): any {
  return ref
    .slice(2)
    .split('/')
    .reduce((node: any, key) => node[key.replaceAll('~1', '/').replaceAll('~0', '~')], document);
}

/** Why a response breaks the contract, or undefined when it keeps it. */
export function contractViolation(method: string, url: string, status: number, contentType: string | undefined, body: string): string | undefined {
  const op = operationFor(method, url);
  if (!op || method.toUpperCase() === 'HEAD') return undefined;
  let pointer = `/paths/${escapeSegment(op.path)}/${op.method}/responses/${status}`;
  let response = op.operation.responses[String(status)];
  if (!response) return `${op.operationId} does not declare status ${status} (body: ${body.slice(0, 300)})`;
  if (response.$ref) {
    pointer = response.$ref.slice(1);
    response = resolve(response.$ref);
  }
  const declared = Object.keys(response.content ?? {});
  if (declared.length === 0) return body === '' ? undefined : `${op.operationId} ${status} declares no body but got ${body.slice(0, 200)}`;
  const mediaType = (contentType ?? '').split(';')[0]!.trim();
  if (!declared.includes(mediaType)) return `${op.operationId} ${status} declares ${declared.join(', ')} but answered ${contentType}`;
  const validate = validatorFor(`${pointer}/content/${escapeSegment(mediaType)}/schema`);
  if (!validate(mediaType.endsWith('json') ? JSON.parse(body) : body))
    return `${op.operationId} ${status} body breaks its schema: ${ajv.errorsText(validate.errors)} (body: ${body.slice(0, 300)})`;
  return undefined;
}

/** Why `value` breaks the schema at `pointer` in the spec, or undefined when it fits. */
export function schemaViolation(pointer: string, value: unknown): string | undefined {
  const validate = validatorFor(pointer);
  return validate(value) ? undefined : ajv.errorsText(validate.errors);
}
