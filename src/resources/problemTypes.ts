// The kinds of problem Tolstoy answers, and the pages their type URIs resolve to
// (GET /problems, GET /problems/{kind}): what each means, and what to do about it.
import { Answer, type Handler } from '../contract/handlers.ts';
import type { ProblemKind } from '../contract/problems.ts';

/** A problem document's `type` is the path of its kind's page: it resolves against the API's address. */
export const PROBLEM_TYPE_BASE = '/problems/';

interface ProblemType {
  status: number;
  title: string;
  /** What happened, in a sentence or two. */
  meaning: string;
  /** What the caller can do about it. */
  remedy: string;
  /** A detail as Tolstoy writes one. */
  example: { detail: string; instance?: string; errors?: { in: string; pointer: string; message: string }[] };
}

// The ids of the spec's examples.
const TOOL = '01a20ce5-da80-781f-a8e2-5d940ed90475';
const FLOW = '01a20ce7-af40-711d-ab0d-549b6f03675a';

export const PROBLEM_TYPES: Record<ProblemKind, ProblemType> = {
  'validation-error': {
    status: 400,
    title: 'The request is not valid',
    meaning:
      'The request breaks the contract: a field of the body, a query or path parameter or a header is missing, of the wrong type, out of range, or unknown. Nothing was changed.',
    remedy:
      '`errors` names each failing field by JSON Pointer (`in` says which part of the request) and what it expects, in words; fix those and send the request again. `errorCount` says how many failed when more than 20 did.',
    example: {
      detail:
        'body/extra: is not a known field; the fields are toolId, name, key, description, method, endpoint, headers, inputSchema; body/method: must be one of: GET, POST, PUT, PATCH, DELETE',
      instance: '/actions',
      errors: [
        {
          in: 'body',
          pointer: '/extra',
          message: 'is not a known field; the fields are toolId, name, key, description, method, endpoint, headers, inputSchema',
        },
        { in: 'body', pointer: '/method', message: 'must be one of: GET, POST, PUT, PATCH, DELETE' },
      ],
    },
  },
  'malformed-request': {
    status: 400,
    title: 'The request cannot be read',
    meaning: 'The request is not valid HTTP, its body is not valid JSON (or empty where a body is required), or its URL cannot be decoded.',
    remedy: 'Check what your client sends: a JSON body with `Content-Type: application/json`, and a correctly encoded URL.',
    example: { detail: 'The body is not valid JSON.', instance: '/tools' },
  },
  'bad-signature': {
    status: 401,
    title: 'Bad signature',
    meaning:
      'A delivery to a webhook trigger that checks signatures carried none, or one that does not match its body, or (Standard Webhooks) a timestamp more than 5 minutes away. Nothing ran; the delivery is listed as rejected, with this reason.',
    remedy: "Sign the raw body with the trigger's secret as its scheme says (the header, prefix and encoding it names), and send the delivery again.",
    example: { detail: 'The signature in X-Hub-Signature-256 does not match the body.', instance: '/hooks/wh_q3Zb8yVt0sJ6kQ1xN4mP7rW2aE5cH9uL0dG3fB6iK8o' },
  },
  unauthorized: {
    status: 401,
    title: 'Authentication required',
    meaning:
      'The request carries no credentials, or ones Tolstoy does not accept: an API key that is malformed, unknown, expired or revoked. The answer never says which, so that keys cannot be probed.',
    remedy:
      "Send `Authorization: Bearer tsk_…` with a current API key (where Tolstoy runs with `TOLSTOY_AUTH=headers`, `X-Org-ID` and `X-User-ID` instead). An organization's owner gets a first key when it is created; members make more with `POST /api-keys`.",
    example: { detail: 'Send a valid API key: Authorization: Bearer tsk_…', instance: '/tools' },
  },
  forbidden: {
    status: 403,
    title: 'Forbidden',
    meaning:
      "Tolstoy knows who calls, and they may not do this: a user who is not a member of the organization named, tenant headers that do not match the API key, or a member doing what only owners may (managing members, other members' keys, tool credentials, the organization itself).",
    remedy: 'Act as a member of the organization, or ask one of its owners to do it (or to make you an owner).',
    example: { detail: 'Only an owner of the organization may set or remove tool credentials.', instance: '/tools' },
  },
  'not-found': {
    status: 404,
    title: 'Not found',
    meaning:
      'There is no such resource in your organization, or no such route. A resource of another organization answers this too, exactly as one that does not exist.',
    remedy: 'Check the id (a list operation shows the ones that exist) and that you act in the right organization.',
    example: { detail: `No tool ${TOOL} in this organization.`, instance: `/tools/${TOOL}` },
  },
  'method-not-allowed': {
    status: 405,
    title: 'Method not allowed',
    meaning: 'The path exists, but not with this method.',
    remedy: 'Use one of the methods the `Allow` header lists.',
    example: { detail: 'PATCH is not allowed on /flows/{id}/versions; use GET, HEAD.', instance: `/flows/${FLOW}/versions` },
  },
  'request-timeout': {
    status: 408,
    title: 'Request timeout',
    meaning: "The request did not arrive whole within the server's request timeout (30 seconds by default). The connection is closed.",
    remedy: 'Send the request again, whole; if it is large, on a faster connection.',
    example: { detail: 'The request was not received whole in time; send it again.' },
  },
  conflict: {
    status: 409,
    title: 'Conflict',
    meaning:
      'The request conflicts with the current state: it would duplicate a unique value (an email, an action key), delete what others still reference, act on an execution that has already finished, or reuse an `Idempotency-Key` whose first request is still being handled.',
    remedy:
      'The detail names what conflicts. Change the value, delete what references the resource first, or, for an idempotency key in use, retry a moment later.',
    example: { detail: `Tool ${TOOL} still has 1 action (organizations.get); delete them first.`, instance: `/tools/${TOOL}` },
  },
  'precondition-failed': {
    status: 412,
    title: 'Precondition failed',
    meaning: "The `If-Match` header named none of the resource's current entity tags: someone changed it since you read it. Nothing was changed.",
    remedy: 'Read the resource again (its `ETag` is in the detail too), apply your change to what it is now, and send it with the new tag.',
    example: {
      detail:
        'The resource changed since you read it (If-Match names none of its tags): its ETag is now "SAI1_v5qbQkGPFL4SB_DmB8cw-x". Read it again, and apply your change to what it is now.',
      instance: `/flows/${FLOW}`,
    },
  },
  'payload-too-large': {
    status: 413,
    title: 'Payload too large',
    meaning: 'The body is larger than 1 MiB.',
    remedy: "Send less: large documents belong in the systems your flows call, not in Tolstoy's requests.",
    example: { detail: 'The body is larger than 1 MiB.', instance: '/flows' },
  },
  'unsupported-media-type': {
    status: 415,
    title: 'Unsupported media type',
    meaning: 'The body is not `application/json` (a `PATCH`: not `application/merge-patch+json`), or it was sent compressed.',
    remedy: 'Send the body as JSON, with the matching `Content-Type`, and without `Content-Encoding`.',
    example: { detail: 'Send the body as application/json (a PATCH as application/merge-patch+json).', instance: '/tools' },
  },
  'unprocessable-content': {
    status: 422,
    title: 'Unprocessable content',
    meaning:
      'The body is well-formed, but refers to something that does not exist in your organization (a `toolId`, an `actionId`), is inconsistent (credentials of another `authType`, a template that does not parse or refers to a step that does not run before it), or reuses an `Idempotency-Key` for a different request.',
    remedy:
      '`errors` names each field and why. Use ids your organization has (create what is missing first), refer to a step key that is not a name as `steps["get-user"]`, or use a new idempotency key for a new request.',
    example: {
      detail: `body/toolId: no tool ${TOOL} in this organization`,
      instance: '/actions',
      errors: [{ in: 'body', pointer: '/toolId', message: `no tool ${TOOL} in this organization` }],
    },
  },
  'too-many-requests': {
    status: 429,
    title: 'Too many requests',
    meaning:
      'The API key (or member), or the whole organization, made more requests in the current window than its limit (by default 1200 a minute per key, 6000 per organization); or, starting or retrying an execution, the organization has as many runs queued as it may (by default 1000).',
    remedy:
      'Wait the seconds `Retry-After` says, then go on; `RateLimit-Remaining` and `RateLimit-Reset` on every answer let you pace requests before it comes to this.',
    example: { detail: 'This API key made more than 1200 requests in 60 s; retry in 17 s.', instance: '/flows' },
  },
  'headers-too-large': {
    status: 431,
    title: 'Request header fields too large',
    meaning: 'The request line and headers together exceed 16 KiB. The connection is closed.',
    remedy: 'Send a shorter URL or fewer, shorter headers.',
    example: { detail: 'The request line and headers together exceed 16 KiB; send a shorter URL or fewer headers.' },
  },
  'run-failed': {
    status: 502,
    title: 'Run failed',
    meaning:
      "A webhook trigger that answers with its run's output (`respond: output`) started a run that failed or was cancelled, so there is no output to answer with.",
    remedy: 'Read the execution the detail names (`GET /executions/{id}`) to see which step failed and why.',
    example: {
      detail: 'Execution 01a20ce7-1b2c-7d3e-8f4a-5b6c7d8e9f0a failed at step notify.',
      instance: '/hooks/wh_q3Zb8yVt0sJ6kQ1xN4mP7rW2aE5cH9uL0dG3fB6iK8o',
    },
  },
  'service-unavailable': {
    status: 503,
    title: 'Service unavailable',
    meaning:
      "Tolstoy's database cannot serve the request right now: it is unreachable, stalled, restarting, or a concurrent change conflicted. Nothing of the request was kept. The cause is in the server's log, under the request id.",
    remedy: 'Retry after the seconds `Retry-After` says; with an `Idempotency-Key`, a retried `POST` can never act twice.',
    example: { detail: 'The database cannot serve this request right now; retry later.', instance: '/flows' },
  },
  'internal-error': {
    status: 500,
    title: 'Internal server error',
    meaning: 'Tolstoy failed to answer the request: a fault of its own, not of the request. It is logged with the request id.',
    remedy: 'Retry later; if it persists, report it with the `requestId` of the problem document.',
    example: { detail: 'The server failed to answer this request; it has been logged.', instance: '/flows' },
  },
};

const PAGE_HEADERS = { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'public, max-age=3600' };

export const listProblemTypes: Handler<'listProblemTypes'> = async () => {
  const rows = Object.entries(PROBLEM_TYPES)
    .map(
      ([kind, type]) =>
        `<tr><td>${type.status}</td><td><a href="${PROBLEM_TYPE_BASE}${kind}"><code>${PROBLEM_TYPE_BASE}${kind}</code></a></td><td>${escapeHtml(type.title)}</td></tr>`,
    )
    .join('\n');
  const body = `<h1>Problem types</h1>
<p>Every error Tolstoy answers is an <a href="https://www.rfc-editor.org/rfc/rfc9457">RFC 9457</a> problem document
(<code>application/problem+json</code>). Its <code>type</code> is one of these paths, which lead to what the problem means and what to do about it.</p>
<table><thead><tr><th>Status</th><th>Type</th><th>Title</th></tr></thead><tbody>
${rows}
</tbody></table>`;
  return new Answer(200, page('Problem types', body), PAGE_HEADERS);
};

export const getProblemType: Handler<'getProblemType'> = async ({ params }) => {
  const type = PROBLEM_TYPES[params.kind];
  const example = {
    type: PROBLEM_TYPE_BASE + params.kind,
    title: type.title,
    status: type.status,
    ...type.example,
    requestId: '6f1c2a9e-4b7d-4e3a-9c5f-2d8b7a1e0c34',
  };
  const body = `<p class="crumbs"><a href="${PROBLEM_TYPE_BASE.slice(0, -1)}">Problem types</a></p>
<h1>${escapeHtml(type.title)} <span class="status">${type.status}</span></h1>
<p><code>type: ${PROBLEM_TYPE_BASE}${params.kind}</code></p>
<h2>What it means</h2>
<p>${inline(type.meaning)}</p>
<h2>What to do</h2>
<p>${inline(type.remedy)}</p>
<h2>Example</h2>
<pre>HTTP/1.1 ${type.status}
Content-Type: application/problem+json

${escapeHtml(JSON.stringify(example, null, 2))}</pre>
<p>Every problem document carries the request's <code>requestId</code>, as its <code>X-Request-Id</code> header does: quote it when you report a problem, and it leads to the request's log lines.</p>`;
  return new Answer(200, page(`${type.title} (${type.status})`, body), PAGE_HEADERS);
};

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Tolstoy API</title>
<link rel="icon" type="image/svg+xml" href="/docs/static/theme/tolstoy-mark.svg">
<style>
body { font: 16px/1.55 system-ui, sans-serif; color: #1d2433; max-width: 46rem; margin: 0 auto; padding: 0 1.25rem 3rem; }
header { display: flex; align-items: center; gap: .6rem; padding: 1rem 0; border-bottom: 1px solid #dde2ea; margin-bottom: 1.5rem; }
header img { width: 32px; height: 32px; }
header a { color: inherit; text-decoration: none; font-weight: 600; }
code, pre { font-family: ui-monospace, monospace; font-size: .9em; }
pre { background: #f4f6f9; padding: 1rem; overflow-x: auto; border-radius: 6px; white-space: pre-wrap; overflow-wrap: anywhere; }
.status { color: #6b7385; font-weight: 400; }
.crumbs { margin: 0; font-size: .9em; }
table { border-collapse: collapse; width: 100%; }
td, th { text-align: left; padding: .35rem .6rem .35rem 0; border-bottom: 1px solid #eef1f5; }
a { color: #2d5bd0; }
</style>
</head>
<body>
<header><img src="/docs/static/theme/tolstoy-mark.svg" alt=""><a href="/docs">Tolstoy API</a></header>
<main>
${body}
</main>
</body>
</html>
`;
}

function escapeHtml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}

/** Escaped text with `code` spans. */
function inline(text: string): string {
  return escapeHtml(text).replace(/`([^`]+)`/g, '<code>$1</code>');
}
