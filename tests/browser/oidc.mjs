// openid-client (a certified OpenID Connect relying-party library) completes the code
// flow with PKCE against a running tessera and validates the ID token, its signature
// included. The user agent is played with fetch: it reads the login form and posts it.
// Started by tests/api/browser/sign_in.rs with {base, clientId, redirectUri, username, password}.
import * as oidc from 'openid-client';

const args = JSON.parse(process.argv[2]);
const out = {};
try {
  const config = await oidc.discovery(new URL(args.base), args.clientId, { id_token_signed_response_alg: args.alg }, oidc.None(), {
    execute: [oidc.allowInsecureRequests],
  });
  oidc.enableNonRepudiationChecks(config);
  const verifier = oidc.randomPKCECodeVerifier();
  const challenge = await oidc.calculatePKCECodeChallenge(verifier);
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: args.redirectUri, scope: 'openid', code_challenge: challenge,
    code_challenge_method: 'S256', state, nonce,
  });
  const page = await fetch(url, { redirect: 'manual' });
  const html = await page.text();
  const cookie = (page.headers.getSetCookie() ?? []).map((c) => c.split(';')[0]).join('; ');
  const form = new URLSearchParams();
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) {
    form.set(m[1], m[2].replaceAll('&amp;', '&').replaceAll('&quot;', '"'));
  }
  form.set('username', args.username);
  form.set('password', args.password);
  const posted = await fetch(new URL('/login', args.base), {
    method: 'POST', body: form, redirect: 'manual', headers: { cookie },
  });
  const location = posted.headers.get('location');
  out.loginStatus = posted.status;
  const tokens = await oidc.authorizationCodeGrant(config, new URL(location), {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  });
  out.claims = tokens.claims();
  out.idTokenAlg = JSON.parse(Buffer.from(tokens.id_token.split('.')[0], 'base64url')).alg;
  out.scope = tokens.scope;
  out.hasRefreshToken = typeof tokens.refresh_token === 'string';
  const info = await oidc.fetchUserInfo(config, tokens.access_token, out.claims.sub);
  out.userinfo = info;
} catch (e) {
  out.error = String(e && e.stack || e);
  if (e && e.cause) out.cause = JSON.stringify(e.cause);
}
process.stdout.write(JSON.stringify(out));
