// Verifies Security Event Tokens with jose (independent of tessera) against a JWKS:
// signature, `typ: secevent+jwt`, `iss`, `aud`. Used by tests/api/ssf.
// Argument: {"jwks": {...}, "issuer": "...", "audience": "...", "sets": ["eyJ..", ...]}
// Prints {"claims": [payload, ...]} in the order given, or {"error": "..."}.
import * as jose from 'jose';

const args = JSON.parse(process.argv[2]);
const keys = jose.createLocalJWKSet(args.jwks);
const claims = [];
try {
  for (const set of args.sets) {
    const { payload } = await jose.jwtVerify(set, keys, {
      issuer: args.issuer,
      audience: args.audience,
      typ: 'secevent+jwt',
    });
    claims.push(payload);
  }
  console.log(JSON.stringify({ claims }));
} catch (e) {
  console.log(JSON.stringify({ error: `${e.code ?? ''} ${e.message}` }));
}
