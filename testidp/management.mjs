// A Management-API-shaped endpoint for user metadata, as Auth0 serves it:
//   GET   /api/v2/users/{id}?fields=user_metadata&include_fields=true
//   PATCH /api/v2/users/{id}   {"user_metadata": {...}}   (merged; a key set to null is deleted)
// The bearer token must be a JWT from this IdP for the management audience and this user, and
// carry the scope the call needs, as Auth0 insists for a user-facing Management API token:
// reading needs read:current_user, updating update:current_user_metadata (else 403
// "Insufficient scope").

import { createHash } from 'node:crypto';
import { jwtVerify, EmbeddedJWK, calculateJwkThumbprint } from 'jose';

const metadata = new Map(); // sub -> object
const seenJti = new Set();

const NEEDED_SCOPE = { GET: 'read:current_user', PATCH: 'update:current_user_metadata' };

export function managementAudience(issuer) {
  return `${issuer}/api/v2/`;
}

export async function handleManagement(req, res, { issuer, keys, readJson, json }) {
  const m = new URL(req.url, issuer).pathname.match(/^\/api\/v2\/users\/([^/]+)$/);
  if (!m) return json(res, 404, { error: 'not_found' });
  const sub = decodeURIComponent(m[1]);
  const [, scheme, token] = /^(Bearer|DPoP) (\S+)$/.exec(req.headers.authorization ?? '') ?? [];
  let claims;
  try {
    ({ payload: claims } = await keys.verify(token ?? '', { issuer, audience: managementAudience(issuer) }));
  } catch (err) {
    return json(res, 401, { statusCode: 401, error: 'Unauthorized', message: `bad token: ${err.code ?? err.message}` });
  }
  // A DPoP-bound token (cnf.jkt) only as DPoP, with a proof of its key for this request.
  const unproven = claims.cnf?.jkt && await unprovenWhy(req, issuer, scheme, token, claims.cnf.jkt);
  if (unproven) return json(res, 401, { statusCode: 401, error: 'Unauthorized', message: unproven });
  if (claims.sub !== sub) return json(res, 403, { statusCode: 403, error: 'Forbidden', message: 'another user' });
  const needed = NEEDED_SCOPE[req.method];
  const granted = String(claims.scope ?? '').split(' ');
  if (needed && !granted.includes(needed)) {
    return json(res, 403, {
      statusCode: 403, error: 'Forbidden', message: 'Insufficient scope, expected any of: ' + needed,
      errorCode: 'insufficient_scope',
    });
  }
  const current = metadata.get(sub) ?? {};
  if (req.method === 'GET') return json(res, 200, { user_metadata: current });
  if (req.method === 'PATCH') {
    const body = await readJson(req);
    if (!body || typeof body.user_metadata !== 'object' || Array.isArray(body.user_metadata)) {
      return json(res, 400, { statusCode: 400, error: 'Bad Request', message: 'user_metadata must be an object' });
    }
    const merged = { ...current };
    for (const [k, v] of Object.entries(body.user_metadata)) {
      if (v === null) delete merged[k];
      else merged[k] = v;
    }
    metadata.set(sub, merged);
    return json(res, 200, { user_id: sub, user_metadata: merged });
  }
  return json(res, 405, { error: 'method_not_allowed' });
}

// Why the request does not prove the key a token is bound to (RFC 9449 §7), or nothing.
async function unprovenWhy(req, issuer, scheme, token, jkt) {
  if (scheme !== 'DPoP') return `a DPoP-bound token sent as ${scheme}`;
  let claims;
  let header;
  try {
    ({ payload: claims, protectedHeader: header } = await jwtVerify(req.headers.dpop ?? '', EmbeddedJWK, {
      typ: 'dpop+jwt', algorithms: ['ES256'],
    }));
  } catch (e) {
    return `no valid DPoP proof: ${e.message}`;
  }
  const htu = new URL(req.url, issuer);
  htu.search = '';
  if (claims.htm !== req.method || claims.htu !== htu.href) return `proof for ${claims.htm} ${claims.htu}`;
  if (claims.ath !== createHash('sha256').update(token).digest('base64url')) return 'ath is not the token\'s';
  if (await calculateJwkThumbprint(header.jwk) !== jkt) return 'the proof is by another key';
  if (!claims.jti || seenJti.has(claims.jti)) return 'a replayed proof';
  seenJti.add(claims.jti);
  return null;
}
