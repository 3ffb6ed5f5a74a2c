// Machine-to-machine clients for tokenbroker's machine accounts (grant = "client_credentials"):
// one with a client secret (client_secret_basic, as Auth0's M2M applications and Keycloak's
// service accounts use by default) and one with private_key_jwt (RFC 7523), whose public keys
// are those of the daemon's test keys (daemon/src/oidc/test_keys: an ES256 and an RS256 key,
// made for tests, protecting nothing). Strict like the rest of the harness: with a resource
// indicator a token carries only the scopes asked for that are the API's own.
//
// idp.mjs spreads these into its configuration and installs `machineStats` after its own
// counting middleware; the token counts per grant (`client_credentials:200`) are idp.mjs's.

import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';

export const MACHINE_CLIENT_ID = 'tokenbroker-machine';
export const MACHINE_CLIENT_SECRET = 'machine-secret-d41e8c7a0f9b';
export const MACHINE_JWT_CLIENT_ID = 'tokenbroker-machine-jwt';

const publicJwk = (file) => {
  const pem = readFileSync(new URL(`../daemon/src/oidc/test_keys/${file}`, import.meta.url));
  return createPublicKey(pem).export({ format: 'jwk' });
};

export const machineClients = () => [{
  client_id: MACHINE_CLIENT_ID,
  client_secret: MACHINE_CLIENT_SECRET,
  client_name: 'tokenbroker test machine client',
  token_endpoint_auth_method: 'client_secret_basic',
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
}, {
  client_id: MACHINE_JWT_CLIENT_ID,
  client_name: 'tokenbroker test machine client with a key',
  token_endpoint_auth_method: 'private_key_jwt',
  jwks: { keys: [publicJwk('ec.pem'), publicJwk('rsa.pem')] },
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
}];

export const machineFeatures = { clientCredentials: { enabled: true } };

// The client assertions a client sends, with the other one-time secrets, for tests that look
// for them in the daemon's logs.
export const machineStats = (getStats) => async (ctx, next) => {
  await next();
  const assertion = ctx.path === '/token' && ctx.method === 'POST' ? ctx.oidc?.body?.client_assertion : undefined;
  const { secrets } = getStats();
  if (assertion && !secrets.includes(assertion)) secrets.push(assertion);
};
