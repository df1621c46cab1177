// Tool credentials at rest: AES-256-GCM under the configured key, sealed as
// `v1.<key id>.<iv>.<tag>.<ciphertext>` (base64url). The associated data is the tool's
// organization and id, so a sealed value copied into another tool or tenant does not open.
// The key id (the first 8 hex digits of the key's SHA-256) tells which key sealed a value, so
// that a rotation can re-seal what the previous key sealed, and start-up can tell a wrong key.
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import type { components } from '../generated/openapi.ts';

export type Credentials = components['schemas']['ToolCredentials'];

const VERSION = 'v1';

const UNOPENED = {
  tool: {
    unknownKey: (id: string) => `the tool's credentials were sealed with key ${id}, which is not configured`,
    altered: "the tool's credentials cannot be opened: they do not belong to this tool, or were altered",
  },
  trigger: {
    unknownKey: (id: string) => `the trigger's secret was sealed with key ${id}, which is not configured`,
    altered: "the trigger's secret cannot be opened: it does not belong to this trigger, or was altered",
  },
  subscription: {
    unknownKey: (id: string) => `the subscription's secret was sealed with key ${id}, which is not configured`,
    altered: "the subscription's secret cannot be opened: it does not belong to this subscription, or was altered",
  },
};

export class CredentialsError extends Error {}

export function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

export class Keyring {
  readonly #current: Buffer;
  readonly #keys: Map<string, Buffer>;
  readonly #digestKey: Buffer;

  /** `current` seals; it and `previous` (during a rotation) open. */
  constructor(current: Buffer, previous?: Buffer) {
    this.#current = current;
    this.#keys = new Map([[keyId(current), current]]);
    if (previous) this.#keys.set(keyId(previous), previous);
    // A key of its own for digests (HKDF, RFC 5869), so that no text is ever both sealed and digested under one key.
    this.#digestKey = Buffer.from(hkdfSync('sha256', current, '', 'tolstoy request digests', 32));
  }

  /**
   * A keyed digest of `text` (HMAC-SHA-256): equal texts have equal digests, and without the
   * process's key a digest says nothing of its text, not even whether a guess of it is right.
   */
  digest(text: string): string {
    return createHmac('sha256', this.#digestKey).update(text).digest('hex');
  }

  get currentId(): string {
    return keyId(this.#current);
  }

  knows(id: string): boolean {
    return this.#keys.has(id);
  }

  seal(credentials: Credentials, owner: { orgId: string; toolId: string }): string {
    return this.#sealText(JSON.stringify(credentials), associatedData(owner));
  }

  open(sealed: string, owner: { orgId: string; toolId: string }): Credentials {
    return JSON.parse(this.#openText(sealed, associatedData(owner), 'tool')) as Credentials;
  }

  /** A webhook trigger's signing secret, sealed as credentials are, bound to the trigger. */
  sealSecret(secret: string, owner: { orgId: string; triggerId: string }): string {
    return this.#sealText(secret, triggerData(owner));
  }

  openSecret(sealed: string, owner: { orgId: string; triggerId: string }): string {
    return this.#openText(sealed, triggerData(owner), 'trigger');
  }

  /** An event subscription's signing secret (current or previous), sealed the same way, bound to the subscription. */
  sealSubscriptionSecret(secret: string, owner: { orgId: string; subscriptionId: string }): string {
    return this.#sealText(secret, subscriptionData(owner));
  }

  openSubscriptionSecret(sealed: string, owner: { orgId: string; subscriptionId: string }): string {
    return this.#openText(sealed, subscriptionData(owner), 'subscription');
  }

  #sealText(text: string, data: Buffer): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#current, iv);
    cipher.setAAD(data);
    const sealed = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
    return [VERSION, this.currentId, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), sealed.toString('base64url')].join('.');
  }

  #openText(sealed: string, data: Buffer, owner: keyof typeof UNOPENED): string {
    const [version, id, iv, tag, text] = sealed.split('.');
    const key = id && this.#keys.get(id);
    if (version !== VERSION || !key || !iv || !tag || text === undefined) {
      throw new CredentialsError(UNOPENED[owner].unknownKey(id ?? '?'));
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(data);
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(text, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw new CredentialsError(UNOPENED[owner].altered);
    }
  }
}

/** The key id a sealed value names. */
export function sealedWith(sealed: string): string | undefined {
  return sealed.split('.')[1];
}

function associatedData({ orgId, toolId }: { orgId: string; toolId: string }): Buffer {
  return Buffer.from(`${orgId}/${toolId}`, 'utf8');
}

// A path no tool's can be: a sealed secret never opens as another owner's.
function triggerData({ orgId, triggerId }: { orgId: string; triggerId: string }): Buffer {
  return Buffer.from(`${orgId}/triggers/${triggerId}`, 'utf8');
}

function subscriptionData({ orgId, subscriptionId }: { orgId: string; subscriptionId: string }): Buffer {
  return Buffer.from(`${orgId}/subscriptions/${subscriptionId}`, 'utf8');
}
