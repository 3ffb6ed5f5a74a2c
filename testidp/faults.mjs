// Deliberately bad ID tokens, so tests can see the broker refuse them. A fault armed with
// POST /__test/id-token-fault {"kind": ...} replaces the ID token of the next token response:
//   forged       the right claims, signed by a key the IdP does not publish
//   expired      exp and iat an hour in the past, properly signed
//   wrong_aud    aud is another client, properly signed
//   wrong_nonce  nonce is not the one the client sent, properly signed
//   wrong_iss    iss is another issuer, properly signed
//   unknown_kid  the right claims and key, under a kid the IdP does not publish

let armed = null;

export function armIdTokenFault(kind) {
  const kinds = ['forged', 'expired', 'wrong_aud', 'wrong_nonce', 'wrong_iss', 'unknown_kid'];
  if (!kinds.includes(kind)) throw new Error(`unknown fault ${kind}; known: ${kinds.join(', ')}`);
  armed = kind;
}

export async function applyIdTokenFault(ctx, keys) {
  if (!armed || ctx.path !== '/token' || ctx.status !== 200 || !ctx.body?.id_token) return;
  const kind = armed;
  armed = null;
  const claims = { ...keys.decode(ctx.body.id_token) };
  const now = Math.floor(Date.now() / 1000);
  switch (kind) {
    case 'expired': claims.iat = now - 7200; claims.exp = now - 3600; break;
    case 'wrong_aud': claims.aud = 'someone-else'; break;
    case 'wrong_nonce': claims.nonce = 'not-the-nonce-you-sent'; break;
    case 'wrong_iss': claims.iss = 'https://evil.example.com'; break;
    default: break;
  }
  const options = { forged: kind === 'forged', otherKid: kind === 'unknown_kid' };
  ctx.body = { ...ctx.body, id_token: await keys.sign(claims, options) };
}
