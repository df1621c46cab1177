// The documentation the API serves beside its operations: the spec itself (/openapi.json,
// /openapi.yaml) and Swagger UI (/docs) in Tolstoy's colours, with the plugin that chains its
// examples and shows the code samples (docs/swagger-ui/).
import { readFileSync } from 'node:fs';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import type { Contract } from './spec.ts';

const ASSETS = new URL('../../docs/swagger-ui/', import.meta.url);

const asset = (name: string) => readFileSync(new URL(name, ASSETS));

// Swagger UI's configuration is written into its page as source: these functions run in the browser.
const plugins = [
  function downloadUrl(system: unknown) {
    // @ts-expect-error SwaggerUIBundle is a global of the page.
    return SwaggerUIBundle.plugins.DownloadUrl(system);
  },
  function tolstoy(system: unknown) {
    // @ts-expect-error TolstoyDocs is a global of the page, defined by docs/swagger-ui/tolstoy.js.
    return window.TolstoyDocs(system);
  },
];

export async function registerDocumentation(app: FastifyInstance, contract: Contract): Promise<void> {
  await app.register(swagger, { mode: 'static', specification: { document: contract.document as never } });
  const { title, version } = contract.document.info;
  const mark = asset('tolstoy-mark.svg');
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { displayOperationId: true, deepLinking: true, docExpansion: 'list', defaultModelsExpandDepth: 0, plugins },
    logo: { type: 'image/svg+xml', content: asset('tolstoy-logo.svg'), href: '/docs', target: '_self' },
    theme: {
      title: `${title} ${version}`,
      favicon: [{ filename: 'tolstoy-mark.svg', rel: 'icon', sizes: 'any', type: 'image/svg+xml', content: mark }],
      css: [{ filename: 'tolstoy.css', content: asset('tolstoy.css').toString() }],
      js: [{ filename: 'tolstoy.js', content: asset('tolstoy.js').toString() }],
    },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => contract.document);
  app.get('/openapi.yaml', { schema: { hide: true } }, async (_request, reply) => reply.type('application/yaml; charset=utf-8').send(contract.yaml));
}
