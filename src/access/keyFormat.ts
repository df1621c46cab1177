// API keys: `tsk_`, a 10-character lookup id, 43 random characters (256 bits) and a 6-character
// CRC32 checksum, all base62. The prefix lets secret scanners spot a key, the checksum lets
// Tolstoy refuse a mistyped or made-up one without a query. Only the key's SHA-256 is stored (the
// key has 256 bits of entropy, so a fast hash is enough); `lookup` finds its row.
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

export const KEY_PREFIX = 'tsk_';
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const LOOKUP_LENGTH = 10;
const SECRET_LENGTH = 43;
const CHECKSUM_LENGTH = 6;
const KEY_SHAPE = new RegExp(`^${KEY_PREFIX}[0-9A-Za-z]{${LOOKUP_LENGTH + SECRET_LENGTH + CHECKSUM_LENGTH}}$`);

/** Random base62 characters, without modulo bias: bytes of 248 and more (4 × 62) are drawn again. */
function randomCharacters(length: number): string {
  let text = '';
  while (text.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248 && text.length < length) text += ALPHABET[byte % 62];
    }
  }
  return text;
}

function checksum(body: string): string {
  let value = crc32(body);
  let text = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    text = ALPHABET[value % 62] + text;
    value = Math.floor(value / 62);
  }
  return text;
}

export interface NewKey {
  key: string;
  lookup: string;
  hash: string;
}

/** A new key; the lookup id is random unless given (a test forging a key for an existing id, say). */
export function newKey(lookup = randomCharacters(LOOKUP_LENGTH)): NewKey {
  const body = KEY_PREFIX + lookup + randomCharacters(SECRET_LENGTH);
  const key = body + checksum(body);
  return { key, lookup, hash: hashOf(key) };
}

/** The lookup id of a well-formed key whose checksum holds; undefined for anything else. */
export function lookupOf(text: string): string | undefined {
  if (!KEY_SHAPE.test(text)) return undefined;
  const body = text.slice(0, -CHECKSUM_LENGTH);
  if (checksum(body) !== text.slice(-CHECKSUM_LENGTH)) return undefined;
  return text.slice(KEY_PREFIX.length, KEY_PREFIX.length + LOOKUP_LENGTH);
}

export function hashOf(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}
