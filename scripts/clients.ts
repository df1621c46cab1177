// `npm run clients`: generates the API's clients from openapi/openapi.yaml with a well-kept
// generator of each language's own ecosystem; the scenarios in test/clients/ use them.
//   TypeScript: openapi-fetch over the types openapi-typescript generates into
//               src/generated/openapi.ts (npm run generate:types, which npm run clients runs first)
//   Python:     openapi-python-client (PyPI)  → test/clients/python/tolstoy_client/
//   Go:         oapi-codegen (Go modules)     → test/clients/go/client.gen.go
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pythonTools } from './python.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

export async function generateClients(): Promise<void> {
  const bin = await pythonTools();
  const python = join(ROOT, 'test', 'clients', 'python');
  await run(
    join(bin, 'openapi-python-client'),
    [
      'generate',
      '--path',
      'openapi/openapi.yaml',
      '--config',
      join(python, 'generator.yaml'),
      '--meta',
      'none',
      '--output-path',
      join(python, 'tolstoy_client'),
      '--overwrite',
    ],
    { cwd: ROOT },
  );
  await run('go', ['tool', 'oapi-codegen', '-config', 'oapi-codegen.yaml', '../../../openapi/openapi.yaml'], { cwd: join(ROOT, 'test', 'clients', 'go') });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await generateClients();
  console.log('Generated the Python client and the Go client; the TypeScript client uses src/generated/openapi.ts.');
}
