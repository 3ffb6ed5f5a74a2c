// Hostile device authorization responses, so tests can see the broker refuse them. A fault
// armed with POST /__test/device-fault {"kind": ...} rewrites the next /device/auth answer:
//   file_uri           verification_uri and verification_uri_complete are file: URLs
//   http_uri           verification_uri is plain http on a host that is not this machine
//   file_uri_complete  only verification_uri_complete is a file: URL
//   control_code       user_code carries terminal escape sequences
//   huge_expires_in    expires_in is 10^19 seconds (beyond i64, within u64)

const KINDS = ['file_uri', 'http_uri', 'file_uri_complete', 'control_code', 'huge_expires_in'];
let armed = null;

export function armDeviceFault(kind) {
  if (!KINDS.includes(kind)) throw new Error(`unknown fault ${kind}; known: ${KINDS.join(', ')}`);
  armed = kind;
}

export function applyDeviceFault(ctx) {
  if (!armed || ctx.path !== '/device/auth' || ctx.status !== 200 || !ctx.body) return;
  const kind = armed;
  armed = null;
  const body = { ...ctx.body };
  switch (kind) {
    case 'file_uri':
      body.verification_uri = 'file:///etc/passwd';
      body.verification_uri_complete = 'file:///etc/passwd';
      break;
    case 'http_uri': body.verification_uri = 'http://idp.example.com/device'; break;
    case 'file_uri_complete': body.verification_uri_complete = 'file:///etc/passwd'; break;
    case 'control_code': body.user_code = 'ABCD\u001b[2J\u001b]0;pwned\u0007-EFGH'; break;
    // 1e19 is exact in a double and prints as 10000000000000000000.
    case 'huge_expires_in': body.expires_in = 1e19; break;
    default: break;
  }
  ctx.body = body;
}
