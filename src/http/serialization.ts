// Responses are serialized from the spec's response schemas by fast-json-stringify, with one
// change: a free-form JSON object (the documents users send, such as a step's inputs) is written
// whole by JSON.stringify instead of key by key. The text is the same, in two thirds of the time
// for a page of flows (bench/profiling.md).
import fastJson, { type Schema } from 'fast-json-stringify';
import type { FastifySerializerCompiler } from 'fastify';

type JsonSchema = { [keyword: string]: unknown };

export const serializerCompiler: FastifySerializerCompiler<unknown> = ({ schema }) => fastJson(wholeDocuments(schema) as Schema);

function isFreeFormObject(schema: JsonSchema): boolean {
  return schema.type === 'object' && schema.additionalProperties === true && schema.properties === undefined && schema.patternProperties === undefined;
}

/** A copy of the schema in which every free-form object is `{}` (any JSON value, via JSON.stringify). */
function wholeDocuments(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(wholeDocuments);
  if (schema === null || typeof schema !== 'object') return schema;
  if (isFreeFormObject(schema as JsonSchema)) return {};
  return Object.fromEntries(Object.entries(schema).map(([keyword, value]) => [keyword, wholeDocuments(value)]));
}
