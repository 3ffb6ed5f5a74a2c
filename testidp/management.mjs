// A Management-API-shaped endpoint for user metadata, as Auth0 serves it:
//   GET   /api/v2/users/{id}?fields=user_metadata&include_fields=true
//   PATCH /api/v2/users/{id}   {"user_metadata": {...}}   (merged; a key set to null is deleted)
// The bearer token must be a JWT from this IdP for the management audience and this user, and
// carry the scope the call needs, as Auth0 insists for a user-facing Management API token:
// reading needs read:current_user, updating update:current_user_metadata (else 403
// "Insufficient scope").

const metadata = new Map(); // sub -> object

const NEEDED_SCOPE = { GET: 'read:current_user', PATCH: 'update:current_user_metadata' };

export function managementAudience(issuer) {
  return `${issuer}/api/v2/`;
}

export async function handleManagement(req, res, { issuer, keys, readJson, json }) {
  const m = new URL(req.url, issuer).pathname.match(/^\/api\/v2\/users\/([^/]+)$/);
  if (!m) return json(res, 404, { error: 'not_found' });
  const sub = decodeURIComponent(m[1]);
  const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
  let claims;
  try {
    ({ payload: claims } = await keys.verify(token, { issuer, audience: managementAudience(issuer) }));
  } catch (err) {
    return json(res, 401, { statusCode: 401, error: 'Unauthorized', message: `bad token: ${err.code ?? err.message}` });
  }
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
