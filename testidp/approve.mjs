// A scripted browser for the device flow: what a person does at the verification URI
// (enter the code, confirm, log in, consent), done with plain HTTP, cookies and forms.

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
  for (let hops = 0; hops < 20 && res.status >= 300 && res.status < 400; hops += 1) {
    const next = new URL(res.headers.get('location'), issuer);
    res = await fetch(next, { redirect: 'manual', headers: headers() });
    jar.take(res);
  }
  html = await res.text();
  const ok = deny !== /Sign-in Success/.test(html);
  return { ok, status: res.status, body: ok ? undefined : html.slice(0, 500) };
}
