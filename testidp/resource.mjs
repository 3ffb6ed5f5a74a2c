// A DPoP resource server for the DPoP tests (RFC 9449 §7): http on 127.0.0.1, answering any
// path only for `Authorization: DPoP <token>` with a valid `DPoP` proof. It checks what a real
// one must: the proof's signature under its own embedded key, typ and alg, htm and htu, iat
// within a minute, its jti never seen before, ath = hash of the token, and that the token (asked
// of the IdP's introspection endpoint) is active and bound to the proof's key (cnf.jkt).
// With --nonce it demands a nonce of its own first (§9: 401, WWW-Authenticate use_dpop_nonce,
// DPoP-Nonce). Refusals are 401 with {"error", "why"}; a success is 200 {"sub", "jkt"}.
//
//   node resource.mjs --issuer ISSUER --client-id ID --client-secret SECRET [--nonce]
// Prints {"url": "http://127.0.0.1:PORT"} once it listens.

import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { jwtVerify, EmbeddedJWK, calculateJwkThumbprint, createRemoteJWKSet } from 'jose';

const { values: opts } = parseArgs({
  options: {
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    nonce: { type: 'boolean', default: false },
  },
});

const discovery = await (await fetch(`${opts.issuer}/.well-known/openid-configuration`)).json();
const idpKeys = createRemoteJWKSet(new URL(discovery.jwks_uri));
const seenJti = new Set();
let nonce = randomBytes(16).toString('base64url');
const b64 = (buf) => Buffer.from(buf).toString('base64url');

class Refused extends Error {
  constructor(error, why, headers = {}) {
    super(why);
    this.error = error;
    this.headers = headers;
  }
}

async function check(req, port) {
  const m = /^(\S+) (\S+)$/.exec(req.headers.authorization || '');
  if (!m) throw new Refused('invalid_request', 'no Authorization header');
  const [, scheme, token] = m;
  if (scheme !== 'DPoP') throw new Refused('invalid_token', `a ${scheme} token where a DPoP-bound one is needed`);
  const proof = req.headers.dpop;
  if (!proof || proof.includes(',')) throw new Refused('invalid_dpop_proof', 'no (single) DPoP header');
  let header;
  let claims;
  try {
    ({ payload: claims, protectedHeader: header } = await jwtVerify(proof, EmbeddedJWK, {
      typ: 'dpop+jwt', algorithms: ['ES256'],
    }));
  } catch (e) {
    throw new Refused('invalid_dpop_proof', `proof does not verify: ${e.message}`);
  }
  if (claims.htm !== req.method) throw new Refused('invalid_dpop_proof', `htm ${claims.htm} for a ${req.method}`);
  const htu = `http://127.0.0.1:${port}${req.url.split('?')[0].split('#')[0]}`;
  if (claims.htu !== htu) throw new Refused('invalid_dpop_proof', `htu ${claims.htu}, not ${htu}`);
  if (typeof claims.iat !== 'number' || Math.abs(Date.now() / 1000 - claims.iat) > 60) {
    throw new Refused('invalid_dpop_proof', 'iat is not within a minute of now');
  }
  if (typeof claims.jti !== 'string' || !claims.jti) throw new Refused('invalid_dpop_proof', 'no jti');
  if (claims.ath !== b64(createHash('sha256').update(token).digest())) {
    throw new Refused('invalid_dpop_proof', 'ath does not match the token');
  }
  if (opts.nonce && claims.nonce !== nonce) {
    throw new Refused('use_dpop_nonce', 'a nonce of ours is needed', { 'DPoP-Nonce': nonce });
  }
  if (seenJti.has(claims.jti)) throw new Refused('invalid_dpop_proof', 'jti seen before: a replayed proof');
  seenJti.add(claims.jti);
  const info = await tokenInfo(token);
  if (!info.active) throw new Refused('invalid_token', 'the IdP says the token is not active');
  const jkt = await calculateJwkThumbprint(header.jwk);
  if (info.cnf?.jkt !== jkt) throw new Refused('invalid_token', `token bound to ${info.cnf?.jkt}, proof by ${jkt}`);
  return { sub: info.sub, jkt, token_type: info.token_type };
}

// What the token is: a JWT (a token for an API) verified with the IdP's keys, an opaque one
// asked of the IdP's introspection endpoint.
async function tokenInfo(token) {
  if (token.split('.').length === 3) {
    try {
      const { payload } = await jwtVerify(token, idpKeys, { issuer: discovery.issuer });
      return { active: true, ...payload };
    } catch {
      return { active: false };
    }
  }
  const basic = Buffer.from(`${opts['client-id']}:${opts['client-secret']}`).toString('base64');
  const r = await fetch(discovery.introspection_endpoint, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }),
  });
  return r.json();
}

const server = http.createServer((req, res) => {
  check(req, server.address().port).then((ok) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(ok));
  }, (e) => {
    const error = e instanceof Refused ? e.error : 'server_error';
    const headers = { 'content-type': 'application/json', ...(e.headers ?? {}) };
    headers['WWW-Authenticate'] = `DPoP error="${error}", algs="ES256"`;
    res.writeHead(e instanceof Refused ? 401 : 500, headers);
    res.end(JSON.stringify({ error, why: e.message }));
  });
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` })}\n`);
});
process.stdout.on('error', () => {});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
