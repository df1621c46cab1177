// Webhook signatures, without a database. Every valid signature here is made by the test itself
// with node:crypto (or by the Standard Webhooks authors' own library, or is a documented example),
// never by the module under test, so a module that computed the wrong digest would fail.
import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import t, { type Test } from 'tap';
import {
  defaultDeliveryIdHeader,
  newSecret,
  type SignatureRule,
  secretProblem,
  signatureHeaders,
  signatureProblem,
  TIMESTAMP_TOLERANCE_SECONDS,
} from '../../src/triggers/signatures.ts';

const NOW = new Date('2026-12-06T12:00:00Z');
const NOW_SECONDS = NOW.getTime() / 1000;
const MISMATCH = 'the signature does not match the body';
const GITHUB: SignatureRule = { scheme: 'hmac-sha256', header: 'X-Hub-Signature-256', prefix: 'sha256=' };
const SHOPIFY: SignatureRule = { scheme: 'hmac-sha256', header: 'X-Shopify-Hmac-Sha256', encoding: 'base64' };
const STANDARD: SignatureRule = { scheme: 'standard-webhooks' };
const HMAC_SECRET = 'a shared secret of the tenant';
const BODY = Buffer.from('{"action":"opened","number":7}');

function hmacOf(secret: string, body: Buffer, encoding: 'hex' | 'base64' = 'hex'): string {
  return createHmac('sha256', secret).update(body).digest(encoding);
}

/** A Standard Webhooks signature entry, by the spec: HMAC-SHA256 of `id.timestamp.body` under the base64-decoded key. */
function standardSignature(secret: string, id: string, timestamp: string, body: Buffer): string {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return `v1,${createHmac('sha256', key)
    .update(Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body]))
    .digest('base64')}`;
}

function standardHeaders(secret: string, body: Buffer, timestamp = String(NOW_SECONDS), id = 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W') {
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': standardSignature(secret, id, timestamp, body) };
}

/** Refused with a reason matching `reason`, which gives away neither the secret nor any digest the module expects. */
function refused(t: Test, problem: string | undefined, reason: string | RegExp, secret: string, ...digests: string[]) {
  if (typeof reason === 'string') t.equal(problem, reason);
  else t.match(problem, reason);
  t.notOk(problem?.includes(secret), 'the reason does not include the secret');
  for (const digest of digests) t.notOk(problem?.includes(digest), 'the reason does not include the expected digest');
}

t.test('hmac-sha256', async (t) => {
  t.test("GitHub's documented example verifies", async (t) => {
    const header = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';
    t.equal(signatureProblem(GITHUB, "It's a Secret to Everybody", Buffer.from('Hello, World!'), { 'x-hub-signature-256': header }, NOW), undefined);
    t.equal(signatureProblem(GITHUB, "It's a Secret to Everybody", Buffer.from('Hello, World?'), { 'x-hub-signature-256': header }, NOW), MISMATCH);
  });

  t.test('a signature made with node:crypto passes; a tampered body, signature or secret does not', async (t) => {
    const digest = hmacOf(HMAC_SECRET, BODY);
    const headers = { 'x-hub-signature-256': `sha256=${digest}` };
    t.equal(signatureProblem(GITHUB, HMAC_SECRET, BODY, headers, NOW), undefined);
    const tamperedBody = Buffer.from('{"action":"opened","number":8}');
    refused(t, signatureProblem(GITHUB, HMAC_SECRET, tamperedBody, headers, NOW), MISMATCH, HMAC_SECRET, hmacOf(HMAC_SECRET, tamperedBody));
    const flipped = (digest[0] === '0' ? '1' : '0') + digest.slice(1);
    refused(t, signatureProblem(GITHUB, HMAC_SECRET, BODY, { 'x-hub-signature-256': `sha256=${flipped}` }, NOW), MISMATCH, HMAC_SECRET, digest);
    refused(t, signatureProblem(GITHUB, 'another secret entirely', BODY, headers, NOW), MISMATCH, 'another secret entirely');
  });

  t.test('a signature of the wrong length is a mismatch, not a throw', async (t) => {
    const digest = hmacOf(HMAC_SECRET, BODY);
    for (const written of [digest.slice(0, -1), `${digest}0`, '', 'é'.repeat(32)]) {
      refused(t, signatureProblem(GITHUB, HMAC_SECRET, BODY, { 'x-hub-signature-256': `sha256=${written}` }, NOW), MISMATCH, HMAC_SECRET, digest);
    }
  });

  t.test('a missing or empty header is named', async (t) => {
    refused(t, signatureProblem(GITHUB, HMAC_SECRET, BODY, {}, NOW), 'the X-Hub-Signature-256 header is missing', HMAC_SECRET);
    refused(
      t,
      signatureProblem(GITHUB, HMAC_SECRET, BODY, { 'x-hub-signature-256': undefined }, NOW),
      'the X-Hub-Signature-256 header is missing',
      HMAC_SECRET,
    );
    refused(t, signatureProblem(GITHUB, HMAC_SECRET, BODY, { 'x-hub-signature-256': '' }, NOW), 'the X-Hub-Signature-256 header is missing', HMAC_SECRET);
    const signedElsewhere = { 'x-hub-signature': `sha256=${hmacOf(HMAC_SECRET, BODY)}` };
    refused(t, signatureProblem(GITHUB, HMAC_SECRET, BODY, signedElsewhere, NOW), 'the X-Hub-Signature-256 header is missing', HMAC_SECRET);
  });

  t.test('the prefix: present passes, missing is refused naming it, and a rule without one takes the bare digest', async (t) => {
    const digest = hmacOf(HMAC_SECRET, BODY);
    refused(
      t,
      signatureProblem(GITHUB, HMAC_SECRET, BODY, { 'x-hub-signature-256': digest }, NOW),
      "the X-Hub-Signature-256 header must start with 'sha256='",
      HMAC_SECRET,
      digest,
    );
    refused(
      t,
      signatureProblem(GITHUB, HMAC_SECRET, BODY, { 'x-hub-signature-256': `SHA256=${digest}` }, NOW),
      /must start with 'sha256='/,
      HMAC_SECRET,
      digest,
    );
    const bare: SignatureRule = { scheme: 'hmac-sha256', header: 'X-Signature' };
    t.equal(signatureProblem(bare, HMAC_SECRET, BODY, { 'x-signature': digest }, NOW), undefined);
    refused(t, signatureProblem(bare, HMAC_SECRET, BODY, { 'x-signature': `sha256=${digest}` }, NOW), MISMATCH, HMAC_SECRET, digest);
  });

  t.test('base64 digests (Shopify style) pass under a base64 rule, and only there', async (t) => {
    const base64 = hmacOf(HMAC_SECRET, BODY, 'base64');
    t.equal(signatureProblem(SHOPIFY, HMAC_SECRET, BODY, { 'x-shopify-hmac-sha256': base64 }, NOW), undefined);
    const hex = hmacOf(HMAC_SECRET, BODY);
    refused(t, signatureProblem(SHOPIFY, HMAC_SECRET, BODY, { 'x-shopify-hmac-sha256': hex }, NOW), MISMATCH, HMAC_SECRET, base64);
    const hexRule: SignatureRule = { ...SHOPIFY, encoding: 'hex' };
    refused(t, signatureProblem(hexRule, HMAC_SECRET, BODY, { 'x-shopify-hmac-sha256': base64 }, NOW), MISMATCH, HMAC_SECRET, hex);
  });

  t.test('upper-case hex is accepted (hex is case-insensitive); base64 is compared exactly', async (t) => {
    const hex = hmacOf(HMAC_SECRET, BODY);
    t.not(hex, hex.toUpperCase(), 'the digest has letters');
    t.equal(signatureProblem(GITHUB, HMAC_SECRET, BODY, { 'x-hub-signature-256': `sha256=${hex.toUpperCase()}` }, NOW), undefined);
    const base64 = hmacOf(HMAC_SECRET, BODY, 'base64');
    const swapped = base64.replace(/[a-zA-Z]/, (letter) => (letter === letter.toLowerCase() ? letter.toUpperCase() : letter.toLowerCase()));
    refused(t, signatureProblem(SHOPIFY, HMAC_SECRET, BODY, { 'x-shopify-hmac-sha256': swapped }, NOW), MISMATCH, HMAC_SECRET, base64);
  });

  t.test("the header's name is matched case-insensitively, both in the rule and in the request", async (t) => {
    const value = `sha256=${hmacOf(HMAC_SECRET, BODY)}`;
    for (const name of ['x-hub-signature-256', 'X-Hub-Signature-256', 'X-HUB-SIGNATURE-256']) {
      t.equal(signatureProblem(GITHUB, HMAC_SECRET, BODY, { [name]: value }, NOW), undefined, name);
    }
    t.equal(signatureProblem({ ...GITHUB, header: 'x-hub-SIGNATURE-256' }, HMAC_SECRET, BODY, { 'x-hub-signature-256': value }, NOW), undefined);
  });

  t.test('a header sent more than once is refused, even when one of its values is right', async (t) => {
    const value = `sha256=${hmacOf(HMAC_SECRET, BODY)}`;
    const twice = 'the X-Hub-Signature-256 header is sent 2 times; send it once';
    refused(t, signatureProblem(GITHUB, HMAC_SECRET, BODY, { 'x-hub-signature-256': [value, value] }, NOW), twice, HMAC_SECRET);
    refused(t, signatureProblem(GITHUB, HMAC_SECRET, BODY, { 'x-hub-signature-256': [value, 'sha256=00'] }, NOW), twice, HMAC_SECRET);
    refused(t, signatureProblem(GITHUB, HMAC_SECRET, BODY, { 'x-hub-signature-256': value, 'X-Hub-Signature-256': value }, NOW), twice, HMAC_SECRET);
    t.equal(signatureProblem(GITHUB, HMAC_SECRET, BODY, { 'x-hub-signature-256': [value] }, NOW), undefined, 'an array of one value is one value');
  });

  t.test('the raw bytes are signed, even when they are not UTF-8', async (t) => {
    const binary = Buffer.from([0x7b, 0xff, 0xfe, 0x00, 0x7d]);
    const value = `sha256=${createHmac('sha256', HMAC_SECRET).update(binary).digest('hex')}`;
    t.equal(signatureProblem(GITHUB, HMAC_SECRET, binary, { 'x-hub-signature-256': value }, NOW), undefined);
    const decodedAndEncoded = Buffer.from(binary.toString('utf8'));
    refused(t, signatureProblem(GITHUB, HMAC_SECRET, decodedAndEncoded, { 'x-hub-signature-256': value }, NOW), MISMATCH, HMAC_SECRET);
  });

  t.test('a rule without a header lets nothing through', async (t) => {
    const value = `sha256=${hmacOf(HMAC_SECRET, BODY)}`;
    refused(t, signatureProblem({ scheme: 'hmac-sha256' }, HMAC_SECRET, BODY, { 'x-hub-signature-256': value }, NOW), /names no signature header/, HMAC_SECRET);
  });
});

t.test('standard-webhooks', async (t) => {
  const secret = newSecret('standard-webhooks');

  t.test("the specification's authors' example verifies", async (t) => {
    // From the test of the standardwebhooks library (libraries/javascript/src/webhook.test.ts, "sign function works").
    const example = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const headers = {
      'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
      'webhook-timestamp': '1614265330',
      'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    };
    const sent = new Date(1614265330 * 1000);
    t.equal(signatureProblem(STANDARD, example, Buffer.from('{"test": 2432232314}'), headers, sent), undefined);
    t.equal(signatureProblem(STANDARD, example, Buffer.from('{"test": 2432232315}'), headers, sent), MISMATCH);
  });

  t.test('a signature made with node:crypto passes, and so does one made by the standardwebhooks library', async (t) => {
    t.equal(signatureProblem(STANDARD, secret, BODY, standardHeaders(secret, BODY), NOW), undefined);
    const id = 'msg_from_the_library';
    const headers = { 'webhook-id': id, 'webhook-timestamp': String(NOW_SECONDS), 'webhook-signature': new Webhook(secret).sign(id, NOW, BODY.toString()) };
    t.equal(signatureProblem(STANDARD, secret, BODY, headers, NOW), undefined);
  });

  t.test('a tampered body, signature, id or timestamp, or a wrong secret, does not pass', async (t) => {
    const headers = standardHeaders(secret, BODY);
    const expected = headers['webhook-signature'].slice('v1,'.length);
    refused(t, signatureProblem(STANDARD, secret, Buffer.from(`${BODY} `), headers, NOW), MISMATCH, secret, expected);
    const flipped = `v1,${expected[0] === 'A' ? 'B' : 'A'}${expected.slice(1)}`;
    refused(t, signatureProblem(STANDARD, secret, BODY, { ...headers, 'webhook-signature': flipped }, NOW), MISMATCH, secret, expected);
    refused(t, signatureProblem(STANDARD, secret, BODY, { ...headers, 'webhook-id': 'msg_another' }, NOW), MISMATCH, secret);
    refused(t, signatureProblem(STANDARD, secret, BODY, { ...headers, 'webhook-timestamp': String(NOW_SECONDS + 1) }, NOW), MISMATCH, secret);
    refused(t, signatureProblem(STANDARD, newSecret('standard-webhooks'), BODY, headers, NOW), MISMATCH, secret, expected);
    refused(t, signatureProblem(STANDARD, secret, BODY, { ...headers, 'webhook-signature': 'v1,' }, NOW), MISMATCH, secret, expected);
  });

  t.test('each missing header is named', async (t) => {
    const headers = standardHeaders(secret, BODY);
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const) {
      const { [name]: _, ...without } = headers;
      refused(t, signatureProblem(STANDARD, secret, BODY, without, NOW), `the ${name} header is missing`, secret);
    }
    const shouted = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toUpperCase(), value]));
    t.equal(signatureProblem(STANDARD, secret, BODY, shouted, NOW), undefined, 'names are case-insensitive');
  });

  t.test('any v1 signature in the list may match (secret rotation); other versions are ignored', async (t) => {
    const old = newSecret('standard-webhooks');
    const valid = standardHeaders(secret, BODY);
    const stale = standardHeaders(old, BODY)['webhook-signature'];
    const rotated = { ...valid, 'webhook-signature': `${stale} ${valid['webhook-signature']}` };
    t.equal(signatureProblem(STANDARD, secret, BODY, rotated, NOW), undefined, 'the second one is valid');
    t.equal(signatureProblem(STANDARD, old, BODY, rotated, NOW), undefined, 'the first one is valid');
    const asV2 = valid['webhook-signature'].replace(/^v1,/, 'v2,');
    refused(
      t,
      signatureProblem(STANDARD, secret, BODY, { ...valid, 'webhook-signature': asV2 }, NOW),
      "the webhook-signature header has no 'v1,<base64 signature>' entry",
      secret,
    );
    refused(t, signatureProblem(STANDARD, secret, BODY, { ...valid, 'webhook-signature': `${asV2} ${stale}` }, NOW), MISMATCH, secret);
    const asV1a = valid['webhook-signature'].replace(/^v1,/, 'v1a,');
    t.equal(signatureProblem(STANDARD, secret, BODY, { ...valid, 'webhook-signature': `${asV1a} ${asV2} ${valid['webhook-signature']}` }, NOW), undefined);
  });

  t.test(`the timestamp may be ${TIMESTAMP_TOLERANCE_SECONDS} s away from now, in the past or the future, and no more`, async (t) => {
    t.equal(TIMESTAMP_TOLERANCE_SECONDS, 300);
    for (const direction of [-1, 1]) {
      const edge = String(NOW_SECONDS + direction * 300);
      t.equal(signatureProblem(STANDARD, secret, BODY, standardHeaders(secret, BODY, edge), NOW), undefined, `${direction * 300} s`);
      const beyond = String(NOW_SECONDS + direction * 301);
      const reason = 'the webhook-timestamp is 301 s away from now; at most 300 s is tolerated';
      refused(t, signatureProblem(STANDARD, secret, BODY, standardHeaders(secret, BODY, beyond), NOW), reason, secret);
    }
    const lateInTheSecond = new Date(NOW.getTime() + 999);
    t.equal(
      signatureProblem(STANDARD, secret, BODY, standardHeaders(secret, BODY, String(NOW_SECONDS - 300)), lateInTheSecond),
      undefined,
      'now is counted in whole seconds',
    );
    refused(t, signatureProblem(STANDARD, secret, BODY, standardHeaders(secret, BODY, String(NOW_SECONDS - 412)), NOW), /is 412 s away/, secret);
  });

  t.test('a timestamp that is not an integer is refused, even when signed', async (t) => {
    for (const timestamp of [`${NOW_SECONDS}.5`, `${NOW_SECONDS}abc`, '1.7e9', `-${NOW_SECONDS}`, `+${NOW_SECONDS}`, '0x6a0f1b40', 'now', '9'.repeat(400)]) {
      const reason = 'the webhook-timestamp header must be an integer number of seconds since 1970-01-01T00:00:00Z';
      refused(t, signatureProblem(STANDARD, secret, BODY, standardHeaders(secret, BODY, timestamp), NOW), reason, secret);
    }
  });

  t.test('a webhook-id with a full stop is refused, even when signed, as the spec asks', async (t) => {
    // Signed content `a.b.<timestamp>.<body>` could otherwise be re-split with other headers.
    refused(
      t,
      signatureProblem(STANDARD, secret, BODY, standardHeaders(secret, BODY, String(NOW_SECONDS), 'msg.1'), NOW),
      /webhook-id header must not contain a full stop/,
      secret,
    );
  });

  t.test('a header sent more than once is refused', async (t) => {
    const headers = standardHeaders(secret, BODY);
    const signature = headers['webhook-signature'];
    refused(
      t,
      signatureProblem(STANDARD, secret, BODY, { ...headers, 'webhook-signature': [signature, signature] }, NOW),
      /webhook-signature header is sent 2 times/,
      secret,
    );
    refused(t, signatureProblem(STANDARD, secret, BODY, { ...headers, 'webhook-id': ['a', 'b'] }, NOW), /webhook-id header is sent 2 times/, secret);
  });

  t.test('the raw bytes are signed: a body that is not UTF-8 verifies, and its decoded text does not', async (t) => {
    // Where the standardwebhooks library would decode a Buffer to text first, and so get both wrong.
    const binary = Buffer.from([0x7b, 0xff, 0x7d]);
    const headers = standardHeaders(secret, binary);
    t.equal(signatureProblem(STANDARD, secret, binary, headers, NOW), undefined);
    const decodedAndEncoded = Buffer.from(binary.toString('utf8'));
    refused(t, signatureProblem(STANDARD, secret, decodedAndEncoded, headers, NOW), MISMATCH, secret);
    const textHeaders = standardHeaders(secret, decodedAndEncoded);
    refused(t, signatureProblem(STANDARD, secret, binary, textHeaders, NOW), MISMATCH, secret);
  });
});

t.test('secretProblem', async (t) => {
  t.test('hmac-sha256 takes 8 to 256 characters', async (t) => {
    for (const secret of ['12345678', 'x'.repeat(256), '🔑'.repeat(8), "It's a Secret to Everybody"]) t.equal(secretProblem('hmac-sha256', secret), undefined);
    for (const secret of ['', '1234567', 'x'.repeat(257), '🔑'.repeat(7)]) t.match(secretProblem('hmac-sha256', secret), /must be 8 to 256 characters long/);
  });

  t.test("standard-webhooks takes 'whsec_' and the canonical base64 of 16 to 64 bytes", async (t) => {
    const ofBytes = (count: number) => `whsec_${Buffer.alloc(count, 7).toString('base64')}`;
    for (const secret of ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', ofBytes(16), ofBytes(32), ofBytes(64)])
      t.equal(secretProblem('standard-webhooks', secret), undefined, secret);
    const expected = /^a standard-webhooks secret must be 'whsec_' followed by the base64 of a key of 16 to 64 bytes; /;
    t.match(secretProblem('standard-webhooks', 'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'), expected);
    t.match(secretProblem('standard-webhooks', 'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'), /does not start with 'whsec_'/);
    t.match(secretProblem('standard-webhooks', 'WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'), /does not start with 'whsec_'/);
    for (const notBase64 of [
      'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!',
      'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS-',
      'whsec_AAAAAAAAAAAAAAAAAAAAAA',
      'whsec_AAAAAAAAAAAAAAAAAAAAAB==',
    ]) {
      t.match(secretProblem('standard-webhooks', notBase64), /is not base64/, notBase64);
    }
    t.match(secretProblem('standard-webhooks', 'whsec_'), /this key has 0 bytes/);
    t.match(secretProblem('standard-webhooks', ofBytes(15)), /this key has 15 bytes/);
    t.match(secretProblem('standard-webhooks', ofBytes(65)), /this key has 65 bytes/);
  });
});

t.test('newSecret', async (t) => {
  t.test('hmac-sha256: 64 hex characters that pass secretProblem and sign', async (t) => {
    const secret = newSecret('hmac-sha256');
    t.match(secret, /^[0-9a-f]{64}$/);
    t.not(newSecret('hmac-sha256'), secret);
    t.equal(secretProblem('hmac-sha256', secret), undefined);
    t.equal(signatureProblem(GITHUB, secret, BODY, { 'x-hub-signature-256': `sha256=${hmacOf(secret, BODY)}` }, NOW), undefined);
    t.equal(signatureProblem(GITHUB, newSecret('hmac-sha256'), BODY, { 'x-hub-signature-256': `sha256=${hmacOf(secret, BODY)}` }, NOW), MISMATCH);
  });

  t.test('standard-webhooks: whsec_ and 24 random bytes, passing secretProblem and signing', async (t) => {
    const secret = newSecret('standard-webhooks');
    t.match(secret, /^whsec_[A-Za-z0-9+/]{32}$/);
    t.equal(Buffer.from(secret.slice('whsec_'.length), 'base64').length, 24);
    t.not(newSecret('standard-webhooks'), secret);
    t.equal(secretProblem('standard-webhooks', secret), undefined);
    t.equal(signatureProblem(STANDARD, secret, BODY, standardHeaders(secret, BODY), NOW), undefined);
  });
});

t.test('the headers a rule names', async (t) => {
  t.same(signatureHeaders(GITHUB), ['x-hub-signature-256']);
  t.same(signatureHeaders(SHOPIFY), ['x-shopify-hmac-sha256']);
  t.same(signatureHeaders(STANDARD), ['webhook-signature']);
  t.same(signatureHeaders({ scheme: 'hmac-sha256' }), []);
  t.equal(defaultDeliveryIdHeader('standard-webhooks'), 'webhook-id');
  t.equal(defaultDeliveryIdHeader('hmac-sha256'), undefined);
});
