// Deliberately bad ID tokens, so tests can see the broker refuse them. A fault armed with
// POST /__test/id-token-fault {"kind": ...} replaces the ID token of the next token response:
//   forged       the right claims, signed by a key the IdP does not publish
//   expired      exp and iat an hour in the past, properly signed
//   wrong_aud    aud is another client, properly signed
//   wrong_nonce  nonce is not the one the client sent, properly signed
//   wrong_iss    iss is another issuer, properly signed
//   unknown_kid  the right claims and key, under a kid the IdP does not publish
//   wrong_sub    sub is another user, properly signed (OIDC Core §12.2 on refresh)
//   foreign_azp  aud is [client, another client] and azp the other one, properly signed
//   future_iat   iat an hour ahead, properly signed
//   garbled      not a JWT at all (openidconnect cannot even parse it)
//   unknown_alg  properly signed, but its header names alg ES256K (no JWS algorithm we know)
// With {"grant": "refresh_token"} (or another grant type) only a response to that grant
// gets it: one refresh, leaving logins alone.

let armed = null;

export function armIdTokenFault(kind, grant) {
  const kinds = ['forged', 'expired', 'wrong_aud', 'wrong_nonce', 'wrong_iss', 'unknown_kid',
    'wrong_sub', 'foreign_azp', 'future_iat', 'garbled', 'unknown_alg'];
  if (!kinds.includes(kind)) throw new Error(`unknown fault ${kind}; known: ${kinds.join(', ')}`);
  armed = { kind, grant };
}

export async function applyIdTokenFault(ctx, keys) {
  if (!armed || ctx.path !== '/token' || ctx.status !== 200 || !ctx.body?.id_token) return;
  const { kind, grant } = armed;
  if (grant && ctx.oidc?.params?.grant_type !== grant) return;
  armed = null;
  const claims = { ...keys.decode(ctx.body.id_token) };
  const now = Math.floor(Date.now() / 1000);
  switch (kind) {
    case 'expired': claims.iat = now - 7200; claims.exp = now - 3600; break;
    case 'wrong_aud': claims.aud = 'someone-else'; break;
    case 'wrong_nonce': claims.nonce = 'not-the-nonce-you-sent'; break;
    case 'wrong_iss': claims.iss = 'https://evil.example.com'; break;
    case 'wrong_sub': claims.sub = 'mallory'; break;
    case 'foreign_azp': claims.aud = [claims.aud, 'another-client']; claims.azp = 'another-client'; break;
    case 'future_iat': claims.iat = now + 3600; claims.exp = now + 7200; break;
    default: break;
  }
  const options = { forged: kind === 'forged', otherKid: kind === 'unknown_kid' };
  let idToken = await keys.sign(claims, options);
  if (kind === 'garbled') idToken = 'this is not a JWT';
  if (kind === 'unknown_alg') {
    const [header, ...rest] = idToken.split('.');
    const alg = { ...JSON.parse(Buffer.from(header, 'base64url')), alg: 'ES256K' };
    idToken = [Buffer.from(JSON.stringify(alg)).toString('base64url'), ...rest].join('.');
  }
  ctx.body = { ...ctx.body, id_token: idToken };
}
