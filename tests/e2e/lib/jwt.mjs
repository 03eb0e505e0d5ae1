// JWT helpers for the token tests: asymmetric keys made with node:crypto and
// RS256 / ES256 / HS256 / alg:none tokens signed the way an identity provider
// (or an attacker) would.

import crypto from 'node:crypto';

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** An RSA key pair; publicPem is the SPKI PEM ssehub reads. */
export function rsaKeys(bits = 2048) {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: bits });
  return { publicKey, privateKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }) };
}

/** An EC key pair on `curve` (P-256 by default). */
export function ecKeys(curve = 'prime256v1') {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: curve });
  return { publicKey, privateKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }) };
}

/**
 * Sign a JWT. alg: RS256 (key: RSA private key), ES256 (key: EC private key;
 * der: true gives a DER signature instead of the JWS raw r||s), HS256 (key: a
 * secret string or Buffer), none (no signature). header overrides are merged.
 */
export function signJwt(payload, { alg, key, header = {}, der = false } = {}) {
  const h = { alg, typ: 'JWT', ...header };
  const data = `${b64url(h)}.${b64url(payload)}`;
  let sig;
  switch (alg) {
    case 'RS256':
      sig = crypto.sign('sha256', Buffer.from(data), key);
      break;
    case 'RS512':
      sig = crypto.sign('sha512', Buffer.from(data), key);
      break;
    case 'PS256':
      sig = crypto.sign('sha256', Buffer.from(data), { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
      break;
    case 'ES256':
      sig = crypto.sign('sha256', Buffer.from(data), { key, dsaEncoding: der ? 'der' : 'ieee-p1363' });
      break;
    case 'HS256':
      sig = crypto.createHmac('sha256', key).update(data).digest();
      break;
    case 'none':
      return `${data}.`;
    default:
      throw new Error(`signJwt: unsupported alg ${alg}`);
  }
  return `${data}.${sig.toString('base64url')}`;
}

export const nowSec = () => Math.floor(Date.now() / 1000);
