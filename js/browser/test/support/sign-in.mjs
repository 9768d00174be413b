// Signs a user in to a public client without a browser, as a user agent would: the login form
// read and posted with fetch (its hidden fields and cookie), the code exchanged with PKCE.
import { createHash, randomBytes } from "node:crypto";

const b64url = (buf) => buf.toString("base64url");

/** Resolves to the token answer ({ access_token, refresh_token, ... }). */
export async function signInByFetch(t, { clientId, redirectUri, username, password }) {
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash("sha256").update(verifier).digest());
  const url = new URL("/authorize", t.issuer);
  for (const [k, v] of Object.entries({
    response_type: "code", client_id: clientId, redirect_uri: redirectUri, scope: "openid",
    state: "s", code_challenge: challenge, code_challenge_method: "S256",
  })) url.searchParams.set(k, v);
  const page = await fetch(url, { redirect: "manual" });
  const html = await page.text();
  const cookie = page.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
  const form = new URLSearchParams();
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) {
    form.set(m[1], m[2].replaceAll("&amp;", "&").replaceAll("&quot;", '"'));
  }
  form.set("username", username);
  form.set("password", password);
  const posted = await fetch(new URL("/login", t.issuer), { method: "POST", body: form, redirect: "manual", headers: { cookie } });
  const location = posted.headers.get("location");
  const code = location && new URL(location).searchParams.get("code");
  if (!code) throw new Error(`no code after the login form (${posted.status}): ${await posted.text()}`);
  const { status, body } = await t.token({
    grant_type: "authorization_code", client_id: clientId, code, redirect_uri: redirectUri, code_verifier: verifier,
  });
  if (status !== 200) throw new Error(`code exchange: ${status} ${JSON.stringify(body)}`);
  return body;
}
