// The contract, read once: openapi/openapi.yaml is the only place where routes, parameters,
// bodies, responses and errors are declared.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const SPEC_PATH = fileURLToPath(new URL('../../openapi/openapi.yaml', import.meta.url));

export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, unknown>>;
  [key: string]: unknown;
}

export interface Contract {
  document: OpenApiDocument;
  yaml: string;
}

export function loadContract(path = SPEC_PATH): Contract {
  const yaml = readFileSync(path, 'utf8');
  return { document: parse(yaml) as OpenApiDocument, yaml };
}
