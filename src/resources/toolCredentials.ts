// Tool credentials as tenants write them: which shape goes with which auth type, and the check
// that a tool's credentials fit its auth type. Their encryption at rest is src/crypto/keyring.ts.

import { unprocessable } from '../contract/problems.ts';
import type { Credentials } from '../crypto/keyring.ts';
import type { components } from '../generated/openapi.ts';

export type AuthType = components['schemas']['AuthType'];

const SHAPES: Record<Exclude<AuthType, 'none'>, string> = {
  apiKey: 'value',
  bearer: 'token',
  basic: 'password',
  oauth2: 'clientSecret',
};

/** The auth type these credentials are for, told by the field only that shape has. */
export function authTypeOf(credentials: Credentials): Exclude<AuthType, 'none'> {
  return (Object.keys(SHAPES) as Exclude<AuthType, 'none'>[]).find((type) => SHAPES[type] in credentials)!;
}

/** Refuses credentials that do not fit the tool's auth type (422 naming the field). */
export function checkCredentialsFit(authType: AuthType, credentials: Credentials | null | undefined): void {
  if (credentials === undefined || credentials === null) return;
  if (authType === 'none') throw unprocessable('/credentials', 'a tool whose authType is none takes no credentials');
  const fits = authTypeOf(credentials);
  if (fits !== authType) throw unprocessable('/credentials', `are ${fits} credentials, but the tool's authType is ${authType}`);
}
