// The Standard Webhooks headers of one attempt (https://www.standardwebhooks.com/), made by the
// spec's own library, never by hand: `webhook-id` is the delivery's id (the same on every attempt
// and redelivery), `webhook-timestamp` the attempt's unix seconds, and `webhook-signature`
// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` under each secret that signs: the current one,
// and during a rotation's overlap the previous one too, space-separated.
import { Webhook } from 'standardwebhooks';

export function signatureHeaders(deliveryId: string, body: string, secrets: string[], at: Date): Record<string, string> {
  return {
    'webhook-id': deliveryId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': secrets.map((secret) => new Webhook(secret).sign(deliveryId, at, body)).join(' '),
  };
}
