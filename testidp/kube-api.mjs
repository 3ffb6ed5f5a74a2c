// A stand-in for a Kubernetes API server, for the kubectl tests: HTTPS on 127.0.0.1 (the
// certificate and key are given), and `GET /api` answered only for a bearer token the test
// IdP's userinfo endpoint accepts. Prints {"url": …} once it listens.
//
//   node kube-api.mjs --cert CERT --key KEY --issuer ISSUER

import https from 'node:https';
import fs from 'node:fs';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: { cert: { type: 'string' }, key: { type: 'string' }, issuer: { type: 'string' } },
});

const discovery = await (await fetch(`${opts.issuer}/.well-known/openid-configuration`)).json();

async function accepted(authorization) {
  const m = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(authorization || '');
  if (!m) return false;
  const r = await fetch(discovery.userinfo_endpoint, { headers: { authorization: `Bearer ${m[1]}` } });
  return r.ok;
}

function answer(res, code, body) {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const server = https.createServer({ cert: fs.readFileSync(opts.cert), key: fs.readFileSync(opts.key) }, (req, res) => {
  accepted(req.headers.authorization).then((ok) => {
    if (!ok) {
      return answer(res, 401, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Unauthorized', code: 401 });
    }
    if (req.method === 'GET' && req.url.split('?')[0] === '/api') {
      return answer(res, 200, {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }],
      });
    }
    answer(res, 404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 });
  }, () => answer(res, 502, {}));
});

server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ url: `https://127.0.0.1:${server.address().port}` }));
});
