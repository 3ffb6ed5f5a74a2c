// The IdP's signing keys, made per start: oidc-provider signs with them, and the test routes
// use them to verify Management API tokens and to sign deliberately bad ID tokens. There is
// always an RS256 key (access tokens, and ID tokens by default); with idTokenAlg ES256 a P-256
// key is published too, and ID tokens (bad ones included) are signed with it.

import { generateKeyPair, exportJWK, SignJWT, jwtVerify, createLocalJWKSet, decodeJwt } from 'jose';

async function keyPair(alg, kid) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const meta = { kid, alg, use: 'sig' };
  return {
    alg,
    kid,
    privateKey,
    privateJwk: { ...(await exportJWK(privateKey)), ...meta },
    publicJwk: { ...(await exportJWK(publicKey)), ...meta },
  };
}

export async function makeKeys({ idTokenAlg = 'RS256' } = {}) {
  const stamp = Date.now().toString(36);
  const pairs = [await keyPair('RS256', `test-${stamp}`)];
  if (idTokenAlg === 'ES256') pairs.push(await keyPair('ES256', `test-ec-${stamp}`));
  else if (idTokenAlg !== 'RS256') throw new Error(`unsupported --id-token-alg ${idTokenAlg}`);
  const signer = pairs.find((p) => p.alg === idTokenAlg);
  const jwks = createLocalJWKSet({ keys: pairs.map((p) => p.publicJwk) });
  // A key the IdP does not publish, for forged tokens under the real kid.
  const { privateKey: forger } = await generateKeyPair(idTokenAlg);
  return {
    jwks: { keys: pairs.map((p) => p.privateJwk) },
    verify: (token, options) => jwtVerify(token, jwks, options),
    sign: (claims, { forged = false, otherKid = false } = {}) => new SignJWT(claims)
      .setProtectedHeader({ alg: idTokenAlg, kid: otherKid ? `${signer.kid}-rotated-away` : signer.kid, typ: 'JWT' })
      .sign(forged ? forger : signer.privateKey),
    decode: decodeJwt,
  };
}
