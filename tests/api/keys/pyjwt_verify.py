#!/usr/bin/env python3
"""Independent check of a tessera access token with PyJWT (used by tests/api/keys/jwks_pyjwt.rs).

Usage: pyjwt_verify.py TOKEN JWKS_FILE ISSUER [ID_TOKEN_AUDIENCE]

Finds the token's `kid` in the JWKS file, pins the algorithm to the key's own
`alg`, verifies the signature, `iss`, `exp` (with the required claims) and the
RFC 9068 header `typ: at+jwt`. Audience is not checked.
With ID_TOKEN_AUDIENCE it checks an OpenID Connect ID token instead: `typ: JWT`,
`aud` that client id, claims `iss sub aud exp iat`.
Exits 0 when the token verifies, 1 when it does not, 2 on bad usage.
"""

import json
import sys

import jwt


def main(argv):
    if len(argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    token, jwks_path, issuer = argv[1], argv[2], argv[3]
    id_token_audience = argv[4] if len(argv) == 5 else None
    expected_typ = ("jwt",) if id_token_audience else ("at+jwt", "application/at+jwt")
    with open(jwks_path, encoding="utf-8") as f:
        jwks_text = f.read()
    try:
        header = jwt.get_unverified_header(token)
        typ = str(header.get("typ", ""))
        if typ.lower() not in expected_typ:
            raise jwt.InvalidTokenError(f"typ is {typ!r}, expected {expected_typ[0]}")
        kid = header.get("kid")
        keys = [k for k in jwt.PyJWKSet.from_json(jwks_text).keys if k.key_id == kid]
        if len(keys) != 1:
            raise jwt.InvalidTokenError(f"kid {kid!r} is not in the JWKS exactly once")
        jwk = keys[0]
        raw = next(k for k in json.loads(jwks_text)["keys"] if k.get("kid") == kid)
        alg = raw["alg"]
        if header.get("alg") != alg:
            raise jwt.InvalidTokenError(f"header alg {header.get('alg')!r} does not match key alg {alg!r}")
        if id_token_audience:
            claims = jwt.decode(
                token,
                jwk.key,
                algorithms=[alg],
                issuer=issuer,
                audience=id_token_audience,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        else:
            claims = jwt.decode(
                token,
                jwk.key,
                algorithms=[alg],
                issuer=issuer,
                options={
                    "verify_aud": False,
                    "require": ["iss", "sub", "aud", "exp", "iat", "jti"],
                },
            )
    except (jwt.PyJWTError, ValueError, KeyError) as err:
        print(f"FAIL: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    print(f"OK: PyJWT {jwt.__version__} verified {alg} kid {kid} sub {claims['sub']}")
    if "amr" in claims or "acr" in claims:
        print(f"amr {' '.join(claims.get('amr', []))}; acr {claims.get('acr', '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
