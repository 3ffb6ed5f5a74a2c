// Test identity provider for tokenbroker: a real oidc-provider on 127.0.0.1 with device flow,
// PKCE, refresh-token rotation with reuse detection, revocation and userinfo, plus a few
// `/__test/*` routes that script what a person would do in a browser (approve a device code)
// and let tests look at what the IdP saw (token-endpoint counts).
//
// Usage: node idp.mjs [--port N] [--issuer URL] [--access-ttl SECS] [--device-ttl SECS]
//                     [--interval SECS] [--rotation-grace SECS] [--no-device-id-token]
//                     [--no-refresh-id-token] [--id-ttl SECS]
//                     [--rfc8414-only KEYS] [--unlisted KEYS] [--no-rfc8414]
//                     [--rfc8414-unavailable N]
//                     [--client-grant-types GRANTS]
//                     [--id-token-alg RS256|ES256]
//                     [--dpop-nonce]
// Prints one JSON line {"issuer": "...", "port": N} on stdout once it listens.

import crypto from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';
import Provider, { errors } from 'oidc-provider';
import MemoryAdapter, { setStorage } from 'oidc-provider/lib/adapters/memory_adapter.js';
import { approveDevice, approveCode } from './approve.mjs';
import { makeKeys } from './keys.mjs';
import { handleManagement, managementAudience } from './management.mjs';
import { armIdTokenFault, applyIdTokenFault } from './faults.mjs';
import { armDeviceFault, applyDeviceFault } from './device_faults.mjs';
import { machineClients, machineFeatures, machineStats } from './machine.mjs';

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    // The issuer to advertise when tests put a proxy in front: http://127.0.0.1:PROXYPORT
    issuer: { type: 'string' },
    'access-ttl': { type: 'string', default: '60' },
    'id-ttl': { type: 'string', default: '3600' },
    'device-ttl': { type: 'string', default: '600' },
    interval: { type: 'string', default: '1' },
    // Like Okta's grace period and Auth0's reuse interval: a rotated refresh token stays good
    // this long. 0 (the default) is oidc-provider's strict reuse detection.
    'rotation-grace': { type: 'string', default: '0' },
    // Comma-separated discovery keys (e.g. device_authorization_endpoint,revocation_endpoint)
    // left out of /.well-known/openid-configuration and listed only in RFC 8414 metadata at
    // /.well-known/oauth-authorization-server, as some IdPs do.
    'rfc8414-only': { type: 'string', default: '' },
    // Comma-separated discovery keys listed nowhere: only an account's config can name them.
    unlisted: { type: 'string', default: '' },
    // No RFC 8414 metadata at all: /.well-known/oauth-authorization-server is a 404.
    'no-rfc8414': { type: 'boolean', default: false },
    // The first N requests for RFC 8414 metadata answer 503, as an IdP that is briefly down.
    'rfc8414-unavailable': { type: 'string', default: '0' },
    // The test client's grant types (comma-separated), to make the IdP answer
    // unauthorized_client for the others.
    'client-grant-types': {
      type: 'string',
      default: 'urn:ietf:params:oauth:grant-type:device_code,refresh_token,authorization_code',
    },
    // Like IdPs that issue no ID token in the device flow (it is not OIDC): the device_code
    // grant's answer carries none.
    'no-device-id-token': { type: 'boolean', default: false },
    // Like Google: ID tokens come with the login only, never with a refresh.
    'no-refresh-id-token': { type: 'boolean', default: false },
    // The ID tokens' signature algorithm (oidc-provider's id_token_signed_response_alg).
    'id-token-alg': { type: 'string', default: 'RS256' },
    // Like Google, Entra and Keycloak: the ID token itself carries the granted profile and
    // email claims (oidc-provider's default puts them in userinfo only).
    'id-token-claims': { type: 'boolean', default: false },
    // DPoP: the token endpoint demands a server nonce in every proof (see the DPoP block).
    'dpop-nonce': { type: 'boolean', default: false },
  },
});

const keyList = (v) => v.split(',').map((k) => k.trim()).filter(Boolean);
const RFC8414_ONLY = keyList(opts['rfc8414-only']);
const UNLISTED = keyList(opts.unlisted);
let rfc8414Unavailable = Number(opts['rfc8414-unavailable']);

export const CLIENT_ID = 'tokenbroker-test';
export const DESKTOP_CLIENT_ID = 'tokenbroker-desktop';
export const DESKTOP_CLIENT_SECRET = 'desktop-secret-not-confidential';

const USERS = {
  alice: {
    sub: 'alice', name: 'Alice Example', given_name: 'Alice', family_name: 'Example',
    email: 'alice@example.com', email_verified: true, picture: 'https://example.com/alice.png',
  },
  bob: { sub: 'bob', name: 'Bob Example', email: 'bob@example.com', email_verified: false },
};

// An unbounded Map instead of the default LRU: long rotation tests must not evict a live grant.
class MapStore extends Map {
  set(key, value) { return super.set(key, value); }
}
const store = new MapStore();
// oidc-provider 8's memory adapter keeps every model in one module-wide store: ours.
setStorage(store);

// With a rotation grace, a consumed refresh token reads as unconsumed until the grace is over:
// reusing it within the grace rotates again instead of revoking the grant.
const ROTATION_GRACE_MS = Number(opts['rotation-grace']) * 1000;
const consumedAt = new Map();
class GraceAdapter extends MemoryAdapter {
  async consume(id) {
    if (this.model !== 'RefreshToken' || ROTATION_GRACE_MS === 0) return super.consume(id);
    if (!consumedAt.has(id)) consumedAt.set(id, Date.now());
    return undefined;
  }

  async find(id) {
    const found = await super.find(id);
    const at = this.model === 'RefreshToken' ? consumedAt.get(id) : undefined;
    if (found && at !== undefined && Date.now() - at > ROTATION_GRACE_MS) {
      return { ...found, consumed: Math.floor(at / 1000) };
    }
    return found;
  }
}

// Everything the tests want to count, reset with POST /__test/stats/reset.
const freshStats = () => ({
  token: {}, token_resource: {}, device_scopes: [], revocation: 0, userinfo: 0, device_authorization: 0, jwks: 0,
  secrets: [], server_metadata: 0, dpop_nonce: {},
});
let stats = freshStats();

const server = http.createServer();
// Node's own default, set explicitly: an idle keep-alive connection is closed after 5 s, as
// many real IdPs (and the load balancers in front of them) do. A client that keeps pooled
// connections longer must cope with finding them closed.
server.keepAliveTimeout = 5000;
await new Promise((resolve) => { server.listen(Number(opts.port), '127.0.0.1', resolve); });
const { port } = server.address();
const issuer = opts.issuer ?? `http://127.0.0.1:${port}`;

const keys = await makeKeys({ idTokenAlg: opts['id-token-alg'] });

// APIs the test client may ask tokens for (RFC 8707 resource indicators; Auth0 calls them
// audiences), each with its own scopes. Tokens for them are JWTs with that `aud`.
const SCOPES = ['openid', 'offline_access', 'profile', 'email'];
const API_SCOPES = {
  'https://api.example.test/': 'api:read',
  'https://reports.example.test/': 'reports:read',
  [managementAudience(issuer)]: 'read:current_user update:current_user_metadata',
};

// ---- DPoP (RFC 9449) -------------------------------------------------------------------------
// Always on: a client that sends no DPoP header gets bearer tokens as before; one that does gets
// tokens bound to its key (token_type DPoP, cnf.jkt), and its refresh tokens too (public
// client). With --dpop-nonce every proof must carry a nonce this IdP issued (use_dpop_nonce).
const DPOP = {
  enabled: true,
  nonceSecret: crypto.randomBytes(32),
  requireNonce: () => opts['dpop-nonce'],
};
// ------------------------------------------------------------------------------------------------

const provider = new Provider(issuer, {
  jwks: keys.jwks,
  clients: [{
    client_id: CLIENT_ID,
    client_name: 'tokenbroker test client',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: keyList(opts['client-grant-types']),
    response_types: ['code'],
    redirect_uris: ["http://127.0.0.1/callback"],
    id_token_signed_response_alg: opts['id-token-alg'],
  }, {
    // Like Google's desktop and TV clients: installed, yet issued a secret it must send.
    client_id: DESKTOP_CLIENT_ID,
    client_secret: DESKTOP_CLIENT_SECRET,
    client_name: 'tokenbroker test client with a secret',
    application_type: 'native',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token', 'authorization_code'],
    response_types: ['code'],
    redirect_uris: ["http://127.0.0.1/callback"],
    id_token_signed_response_alg: opts['id-token-alg'],
  }, ...machineClients()],
  adapter: (model) => new GraceAdapter(model, store),
  findAccount: (_ctx, id) => USERS[id] && {
    accountId: id,
    claims: () => USERS[id],
  },
  claims: {
    openid: ['sub'],
    profile: ['name', 'given_name', 'family_name', 'picture'],
    email: ['email', 'email_verified'],
  },
  scopes: SCOPES,
  conformIdTokenClaims: !opts['id-token-claims'],
  features: {
    ...machineFeatures,
    devInteractions: { enabled: false },
    deviceFlow: { enabled: true },
    revocation: {
      enabled: true,
      // A public client may revoke its own tokens (the default policy refuses silently).
      allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId,
    },
    introspection: { enabled: true },
    userinfo: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    dPoP: DPOP,
    resourceIndicators: {
      enabled: true,
      // No resource in a token request means a token for userinfo (opaque), as with Auth0's
      // default audience.
      defaultResource: () => undefined,
      useGrantedResource: () => false,
      getResourceServerInfo: (_ctx, indicator) => {
        if (!(indicator in API_SCOPES)) throw new errors.InvalidTarget(`unknown API ${indicator}`);
        return {
          scope: API_SCOPES[indicator],
          audience: indicator,
          accessTokenTTL: Number(opts['access-ttl']),
          accessTokenFormat: 'jwt',
        };
      },
    },
  },
  ttl: {
    AccessToken: Number(opts['access-ttl']),
    ClientCredentials: Number(opts['access-ttl']),
    IdToken: Number(opts['id-ttl']),
    DeviceCode: Number(opts['device-ttl']),
    RefreshToken: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
    Session: 14 * 24 * 3600,
    Interaction: 600,
  },
  rotateRefreshToken: true,
  pkce: { required: () => true },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: ['tokenbroker-test-cookie-key'] },
});
provider.proxy = false;
provider.use(machineStats(() => stats));

// ---- DPoP: count the token requests refused for want of a nonce, by grant -------------------
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/token' && ctx.body?.error === 'use_dpop_nonce') {
    const grant = (ctx.oidc?.params?.grant_type ?? 'unknown').replace('urn:ietf:params:oauth:grant-type:', '');
    stats.dpop_nonce[grant] = (stats.dpop_nonce[grant] ?? 0) + 1;
  }
});
// ------------------------------------------------------------------------------------------------

// oidc-provider sends no `interval`, so RFC 8628 clients would poll every 5 s; tests want 1 s.
provider.use(async (ctx, next) => {
  // Like Auth0 and Google, grant offline_access in the code flow without insisting on
  // prompt=consent (oidc-provider follows OIDC Core and would drop it).
  if (ctx.path === '/auth' && ctx.method === 'GET') {
    const query = new URLSearchParams(ctx.querystring);
    if (!query.has('prompt')) {
      query.set('prompt', 'consent');
      ctx.querystring = query.toString();
    }
  }
  // RFC 8414 metadata is the discovery document under another name (oidc-provider 8 serves
  // none of its own), unless --no-rfc8414 makes it a 404, as at most OIDC-only IdPs.
  const serverMetadata = ctx.path === '/.well-known/oauth-authorization-server';
  if (serverMetadata) {
    stats.server_metadata += 1;
    if (opts['no-rfc8414']) {
      ctx.status = 404;
      ctx.body = { error: 'not_found' };
      return;
    }
    if (rfc8414Unavailable > 0) {
      rfc8414Unavailable -= 1;
      ctx.status = 503;
      ctx.body = { error: 'temporarily_unavailable' };
      return;
    }
    ctx.path = '/.well-known/openid-configuration';
  }
  await next();
  if ((serverMetadata || ctx.path === '/.well-known/openid-configuration') && ctx.status === 200 && ctx.body) {
    const hidden = serverMetadata ? UNLISTED : [...RFC8414_ONLY, ...UNLISTED];
    ctx.body = Object.fromEntries(Object.entries(ctx.body).filter(([k]) => !hidden.includes(k)));
  }
  await applyIdTokenFault(ctx, keys);
  // RFC 6749 §5.2 calls a grant the client may not use unauthorized_client, as Auth0 and Okta
  // answer; oidc-provider says invalid_request.
  if (ctx.status === 400 && ctx.body?.error === 'invalid_request'
      && / is not allowed for this client$/.test(ctx.body.error_description ?? '')) {
    ctx.body = { ...ctx.body, error: 'unauthorized_client' };
  }
  applyDeviceFault(ctx);
  const grant = ctx.oidc?.params?.grant_type;
  if (ctx.path === '/token' && ctx.status === 200 && ctx.body?.id_token
      && ((opts['no-device-id-token'] && grant === 'urn:ietf:params:oauth:grant-type:device_code')
        || (opts['no-refresh-id-token'] && grant === 'refresh_token'))) {
    const { id_token: _dropped, ...rest } = ctx.body;
    ctx.body = rest;
  }
  if (ctx.path === '/device/auth' && ctx.method === 'POST') {
    // As sent (oidc-provider's own params are deduplicated): a strict IdP refuses a scope
    // list that repeats a value.
    const scope = ctx.oidc?.body?.scope ?? null;
    stats.device_scopes.push(scope);
    const values = (scope ?? '').split(' ').filter(Boolean);
    // And, like Okta, a scope it does not offer (oidc-provider would drop it silently).
    const known = new Set([...SCOPES, ...Object.values(API_SCOPES).flatMap((v) => v.split(' '))]);
    const unknown = values.filter((v) => !known.has(v));
    if (new Set(values).size !== values.length) {
      ctx.status = 400;
      ctx.body = { error: 'invalid_scope', error_description: 'the scope parameter repeats a value' };
    } else if (unknown.length > 0) {
      ctx.status = 400;
      ctx.body = { error: 'invalid_scope', error_description: `unknown scope ${unknown.join(' ')}` };
    }
  }
  if (ctx.path === '/device/auth' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
    ctx.body = { ...ctx.body, interval: Number(opts.interval) };
    stats.device_authorization += 1;
  }
  if (ctx.path === '/token' && ctx.method === 'POST') {
    const grant = ctx.oidc?.params?.grant_type ?? 'unknown';
    const key = `${grant.replace('urn:ietf:params:oauth:grant-type:', '')}:${ctx.status}`;
    stats.token[key] = (stats.token[key] ?? 0) + 1;
    // RFC 8707: a login's token request with `resource` gets a token bound to that API, which
    // userinfo refuses; tests check the client asks for APIs only where it should.
    const resource = ctx.oidc?.params?.resource;
    if (resource) stats.token_resource[grant] = (stats.token_resource[grant] ?? 0) + 1;
    // The one-time secrets a client sends, for tests that look for them in its logs.
    for (const name of ['device_code', 'code', 'code_verifier']) {
      const value = ctx.oidc?.params?.[name];
      if (value && !stats.secrets.includes(value)) stats.secrets.push(value);
    }
  }
  if (ctx.path === '/token/revocation' && ctx.method === 'POST') stats.revocation += 1;
  if (ctx.path === '/me') stats.userinfo += 1;
  if (ctx.path === '/jwks') stats.jwks += 1;
});

// The interaction "UI": no HTML forms, the scripted browser (approve.mjs) says who logs in
// with the x-test-account header and whether to deny with x-test-deny.
async function interaction(req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  const account = req.headers['x-test-account'];
  if (req.headers['x-test-deny'] === '1' || !USERS[account]) {
    return provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'the user said no',
    }, { mergeWithLastSubmission: false });
  }
  const { prompt, params } = details;
  if (prompt.name === 'login') {
    return provider.interactionFinished(req, res, { login: { accountId: account } },
      { mergeWithLastSubmission: false });
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  return provider.interactionFinished(req, res, { consent: { grantId } },
    { mergeWithLastSubmission: true });
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readJson(req) {
  let data = '';
  for await (const chunk of req) data += chunk;
  return data ? JSON.parse(data) : {};
}

// Forget every access token of an account (as when they expire or are revoked one by one),
// leaving its grants and refresh tokens alone.
async function revokeAccessTokens(account) {
  let n = 0;
  for (const [key, value] of store) {
    if (key.startsWith('AccessToken:') && value.accountId === account) { store.delete(key); n += 1; }
  }
  return n;
}

// Revoke every grant of an account, as an admin would in the IdP's dashboard.
async function revokeAccount(account) {
  const grants = new Set();
  for (const [key, value] of store) {
    if (key.startsWith('RefreshToken:') && value.accountId === account) grants.add(value.grantId);
  }
  for (const grantId of grants) await new MemoryAdapter('Grant', store).revokeByGrantId(grantId);
  return grants.size;
}

const callback = provider.callback();
server.on('request', async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    const m = url.pathname.match(/^\/interaction\/([^/]+)$/);
    if (m) return await interaction(req, res, m[1]);
    if (url.pathname === '/__test/approve' && req.method === 'POST') {
      const body = await readJson(req);
      const result = await approveDevice(`http://127.0.0.1:${port}`, body.user_code, {
        account: body.account ?? 'alice', deny: Boolean(body.deny),
      });
      return json(res, result.ok ? 200 : 400, result);
    }
    if (url.pathname === '/__test/approve-code' && req.method === 'POST') {
      const body = await readJson(req);
      const result = await approveCode(`http://127.0.0.1:${port}`, body.url, {
        account: body.account ?? 'alice', deny: Boolean(body.deny),
      });
      return json(res, result.ok ? 200 : 400, result);
    }
    if (url.pathname === '/__test/id-token-fault' && req.method === 'POST') {
      const body = await readJson(req);
      armIdTokenFault(body.kind, body.grant);
      return json(res, 200, { armed: true });
    }
    if (url.pathname === '/__test/device-fault' && req.method === 'POST') {
      armDeviceFault((await readJson(req)).kind);
      return json(res, 200, { armed: true });
    }
    if (url.pathname.startsWith('/api/v2/')) {
      return await handleManagement(req, res, { issuer, keys, readJson, json });
    }
    if (url.pathname === '/__test/stats') {
      if (req.method === 'POST') stats = freshStats();
      return json(res, 200, stats);
    }
    if (url.pathname === '/__test/revoke-access' && req.method === 'POST') {
      const body = await readJson(req);
      return json(res, 200, { revoked_access_tokens: await revokeAccessTokens(body.account ?? 'alice') });
    }
    if (url.pathname === '/__test/revoke' && req.method === 'POST') {
      const body = await readJson(req);
      return json(res, 200, { revoked_grants: await revokeAccount(body.account ?? 'alice') });
    }
    return callback(req, res);
  } catch (err) {
    return json(res, 500, { error: 'harness_error', error_description: String(err?.stack ?? err) });
  }
});

process.stdout.write(`${JSON.stringify({ issuer, port, client_id: CLIENT_ID })}\n`);
// Tests read only that first line and may close the pipe; oidc-provider's notices (which it
// writes with console.log) go to stderr so a closed stdout cannot crash the IdP.
console.log = console.error;
console.info = console.error;
process.stdout.on('error', () => {});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
