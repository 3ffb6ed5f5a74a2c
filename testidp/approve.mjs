// A scripted browser: what a person does at the verification URI (device flow: enter the
// code, confirm, log in, consent) or at the authorization URL (code flow: log in, consent,
// land on the app's loopback redirect), done with plain HTTP, cookies and forms.

class Jar {
  constructor() { this.cookies = new Map(); }

  take(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (!value || /expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header() { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }
}

function hidden(html, name) {
  const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  return m && m[1];
}

export async function approveDevice(issuer, userCode, { account = 'alice', deny = false } = {}) {
  const jar = new Jar();
  const headers = () => ({
    cookie: jar.header(), 'x-test-account': account, 'x-test-deny': deny ? '1' : '0',
  });
  const post = async (url, form) => {
    const res = await fetch(url, {
      method: 'POST',
      redirect: 'manual',
      headers: { ...headers(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
    jar.take(res);
    return res;
  };

  let res = await fetch(`${issuer}/device?user_code=${encodeURIComponent(userCode)}`, {
    redirect: 'manual', headers: headers(),
  });
  jar.take(res);
  const xsrf = hidden(await res.text(), 'xsrf');
  if (!xsrf) return { ok: false, step: 'device form', status: res.status };

  res = await post(`${issuer}/device`, { xsrf, user_code: userCode });
  let html = await res.text();
  const xsrf2 = hidden(html, 'xsrf');
  if (!xsrf2) return { ok: false, step: 'confirm form', status: res.status, body: html.slice(0, 500) };

  res = await post(`${issuer}/device`, { xsrf: xsrf2, user_code: userCode, confirm: 'yes' });
  res = await follow(res, issuer, jar, headers);
  html = await res.text();
  const ok = deny !== /Sign-in Success/.test(html);
  return { ok, status: res.status, body: ok ? undefined : html.slice(0, 500) };
}

// Follow redirects within the IdP with the cookie jar; stop at the first one that leaves it.
async function follow(res, issuer, jar, headers) {
  let current = res;
  for (let hops = 0; hops < 20 && current.status >= 300 && current.status < 400; hops += 1) {
    const next = new URL(current.headers.get('location'), issuer);
    if (next.origin !== new URL(issuer).origin) return { redirect: next };
    current = await fetch(next, { redirect: 'manual', headers: headers() });
    jar.take(current);
  }
  return current;
}

// The code flow: open the authorization URL, log in and consent, then load the loopback
// redirect URI as the browser would, which hands the code to the daemon.
export async function approveCode(issuer, authorizationUrl, { account = 'alice', deny = false } = {}) {
  const jar = new Jar();
  const headers = () => ({
    cookie: jar.header(), 'x-test-account': account, 'x-test-deny': deny ? '1' : '0',
  });
  const url = new URL(authorizationUrl);
  const start = new URL(url.pathname + url.search, issuer);
  let res = await fetch(start, { redirect: 'manual', headers: headers() });
  jar.take(res);
  res = await follow(res, issuer, jar, headers);
  if (!res.redirect) {
    return { ok: false, step: 'no redirect to the app', status: res.status, body: (await res.text()).slice(0, 500) };
  }
  const landing = await fetch(res.redirect, { redirect: 'manual' });
  const page = await landing.text();
  const sent = res.redirect.searchParams;
  const ok = deny ? sent.get('error') === 'access_denied' : Boolean(sent.get('code'));
  return { ok, app_status: landing.status, app_page: page.slice(0, 300), error: sent.get('error') ?? undefined };
}
