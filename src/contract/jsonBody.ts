// JSON request bodies: Fastify's own parser, behind a limit on nesting. Keys such as __proto__
// stay plain data (JSON.parse makes them own properties, and no body is ever merged into another
// object), because the API stores any JSON object as sent. A body nested thousands of levels deep
// parses fine but overflows the stack of every recursive step after it (JSON.stringify
// included), so it is refused up front.
import type { FastifyInstance } from 'fastify';
import { ProblemError } from '../problems.ts';

export const MAX_NESTING = 64;

export function registerJsonBodies(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('ignore', 'ignore');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (nestingDepth(body as string) > MAX_NESTING) {
      done(new ProblemError('malformed-request', `The body nests objects and arrays deeper than ${MAX_NESTING} levels.`), undefined);
      return;
    }
    parse(request, body as string, done);
  });
}

/** How deeply arrays and objects nest in a JSON text; brackets inside strings do not count. */
export function nestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (inString) {
      if (char === 0x5c) i++; // a backslash escapes the next character
      else if (char === 0x22) inString = false;
    } else if (char === 0x22) {
      inString = true;
    } else if (char === 0x7b || char === 0x5b) {
      deepest = Math.max(deepest, ++depth);
    } else if (char === 0x7d || char === 0x5d) {
      depth--;
    }
  }
  return deepest;
}
