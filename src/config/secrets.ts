// The database URLs from a JSON secret in AWS Secrets Manager, read with the SDK's default
// credential chain (an IAM role in production, access keys in the environment elsewhere) and its
// standard retries with backoff for transient failures. Every failure becomes one sentence an
// operator can act on; none repeats a secret value.
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { encryptionKey, postgresUrl } from './config.ts';
import type { DatabaseUrls, SecretSettings } from './settings.ts';

export const SECRET_ATTEMPTS = 4;

export class SecretError extends Error {}

export async function readDatabaseSecret(settings: SecretSettings): Promise<DatabaseUrls> {
  const { region, secretName, timeoutMs } = settings;
  const client = new SecretsManagerClient({
    region,
    maxAttempts: SECRET_ATTEMPTS,
    requestHandler: { connectionTimeout: timeoutMs, requestTimeout: timeoutMs, throwOnRequestTimeout: true },
  });
  let text: string | undefined;
  try {
    text = (await client.send(new GetSecretValueCommand({ SecretId: secretName }))).SecretString;
  } catch (error) {
    throw new SecretError(explain(error as AwsError, settings));
  } finally {
    client.destroy();
  }
  return databaseUrls(text, secretName);
}

interface AwsError extends Error {
  code?: string;
  $metadata?: { attempts?: number };
}

function explain(error: AwsError, { region, secretName }: SecretSettings): string {
  const secret = `secret "${secretName}" in ${region}`;
  const endpoint = process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER ?? process.env.AWS_ENDPOINT_URL ?? `AWS Secrets Manager in ${region}`;
  switch (error.name) {
    case 'ResourceNotFoundException':
      return `The ${secret} does not exist; check AWS_SECRET_NAME and AWS_REGION.`;
    case 'AccessDeniedException':
      return `Access to the ${secret} was denied: the AWS identity in use needs the IAM permission secretsmanager:GetSecretValue on it.`;
    case 'UnrecognizedClientException':
    case 'InvalidClientTokenId':
    case 'InvalidSignatureException':
    case 'IncompleteSignature':
    case 'SignatureDoesNotMatch':
    case 'ExpiredTokenException':
      return `AWS rejected the credentials in use while reading the ${secret} (${error.name}); check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the IAM role.`;
    case 'CredentialsProviderError':
      return `No AWS credentials were found to read the ${secret}: attach an IAM role, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.`;
    case 'DecryptionFailure':
      return `The ${secret} cannot be decrypted with its KMS key; the AWS identity in use needs kms:Decrypt on that key.`;
    case 'TimeoutError':
      return `${endpoint} did not answer within the timeout (AWS_SECRETS_TIMEOUT_MS) after ${attempts(error)} attempts while reading the ${secret}.`;
  }
  if (['ECONNREFUSED', 'ENOTFOUND', 'ECONNRESET', 'EHOSTUNREACH', 'ETIMEDOUT', 'EAI_AGAIN'].includes(error.code ?? '')) {
    return `${endpoint} cannot be reached (${error.code}) after ${attempts(error)} attempts while reading the ${secret}.`;
  }
  return `Reading the ${secret} failed after ${attempts(error)} attempts: ${error.name}.`;
}

function attempts(error: AwsError): number {
  return error.$metadata?.attempts ?? SECRET_ATTEMPTS;
}

function databaseUrls(text: string | undefined, secretName: string): DatabaseUrls {
  const shape = 'a JSON object such as {"DATABASE_URL": "postgresql://…", "DIRECT_URL": "postgresql://…"}';
  if (text === undefined) throw new SecretError(`The secret "${secretName}" holds binary data; store ${shape} as its text.`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new SecretError(`The secret "${secretName}" is not JSON; store ${shape}.`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new SecretError(`The secret "${secretName}" is not ${shape}.`);
  const { DATABASE_URL, DIRECT_URL, TOLSTOY_ENCRYPTION_KEY, TOLSTOY_ENCRYPTION_KEY_PREVIOUS } = value as Record<string, unknown>;
  if (typeof DATABASE_URL !== 'string' || DATABASE_URL === '') throw new SecretError(`The secret "${secretName}" has no DATABASE_URL; store ${shape}.`);
  const problems: string[] = [];
  const url = postgresUrl(`DATABASE_URL in the secret "${secretName}"`, DATABASE_URL, problems);
  const directUrl = typeof DIRECT_URL === 'string' ? postgresUrl(`DIRECT_URL in the secret "${secretName}"`, DIRECT_URL, problems) : undefined;
  if (DIRECT_URL !== undefined && typeof DIRECT_URL !== 'string') problems.push(`DIRECT_URL in the secret "${secretName}" must be a string`);
  const key = (name: string, text: unknown) =>
    text === undefined ? undefined : encryptionKey(`${name} in the secret "${secretName}"`, String(text), problems);
  const encryptionKeys = {
    current: key('TOLSTOY_ENCRYPTION_KEY', TOLSTOY_ENCRYPTION_KEY),
    previous: key('TOLSTOY_ENCRYPTION_KEY_PREVIOUS', TOLSTOY_ENCRYPTION_KEY_PREVIOUS),
  };
  if (problems.length > 0 || !url) throw new SecretError(`${problems.join('; ')}.`);
  return { url, directUrl: directUrl ?? url, encryptionKeys };
}
