// The IdP's signing key, made per start: oidc-provider signs with it, and the test routes use
// it to verify Management API tokens and to sign deliberately bad ID tokens.

import { generateKeyPair, exportJWK, SignJWT, jwtVerify, createLocalJWKSet, decodeJwt } from 'jose';

export async function makeKeys() {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = `test-${Date.now().toString(36)}`;
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  const jwks = createLocalJWKSet({ keys: [publicJwk] });
  // A key the IdP does not publish, for forged tokens under the real kid.
  const { privateKey: forger } = await generateKeyPair('RS256');
  return {
    jwks: { keys: [privateJwk] },
    verify: (token, options) => jwtVerify(token, jwks, options),
    sign: (claims, { forged = false, otherKid = false } = {}) => new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: otherKid ? `${kid}-rotated-away` : kid, typ: 'JWT' })
      .sign(forged ? forger : privateKey),
    decode: decodeJwt,
  };
}
