#!/usr/bin/env bash
# Contract fuzzing: runs schemathesis against the real binary with openapi.yaml.
#
# Builds the debug binary (reusing the build `cargo nextest run` already made), sets up a
# throwaway server in a temp dir (a confidential client, a public client, two admin
# users and an ordinary one), starts it on a free loopback port, fetches tokens, and runs
# `st run` in four passes (see below) with .ci/schemathesis.toml (checks, credentials,
# per-operation exceptions).
# Exits non-zero on any failed check or error; the server is stopped in every case.
#
# Knobs (environment): ST_MAX_EXAMPLES (default 30 per operation and phase), ST_SEED
# (default 20240601), ST_TIMEOUT (seconds, default 600: a hard bound on each `st run`),
# ST_WORKERS (default 1, so that a seed reproduces the same sequence of requests),
# ST_CHECKS (e.g. `all`: replaces the config's checks, and its per-operation exceptions),
# ST_REPORT (default junit; e.g. junit,har), ST_KEEP=1 keeps the temp dir (server log,
# reports), ST_PASSES (default `main users keys clients ssf`: the passes to run, see the end).
#
# The time bound is an outer `timeout`, not `--max-time`: in schemathesis 4 `--max-time`
# is a budget that fuzzing and stateful testing *repeat until spent*, which would make
# every run last exactly that long and draw cases beyond the fixed --max-examples.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SCHEMATHESIS_VERSION=4.32.5
VENV=$ROOT/target/ci-venv
MAX_EXAMPLES=${ST_MAX_EXAMPLES:-30}
TIMEOUT=${ST_TIMEOUT:-600}
SEED=${ST_SEED:-20240601}

log() { printf '== schemathesis: %s\n' "$*" >&2; }

# --- schemathesis in target/ci-venv (skipped when the right version is already there)
if [[ "$("$VENV/bin/st" --version 2>/dev/null || true)" != *" $SCHEMATHESIS_VERSION" ]]; then
    log "installing schemathesis==$SCHEMATHESIS_VERSION into target/ci-venv"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
"$VENV/bin/st" --version

total_start=$SECONDS

# --- the binary (a no-op or a quick link after `cargo nextest run`)
log "cargo build"
cargo build --quiet
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/debug/tessera

# --- a throwaway server
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tessera-st.XXXXXX")
SERVER_PID=
cleanup() {
    local rc=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ $rc -ne 0 && -f "$WORK/server.log" ]]; then
        log "server log (last 40 lines):"
        tail -n 40 "$WORK/server.log" >&2 || true
    fi
    if [[ "${ST_KEEP:-0}" == 1 ]]; then
        log "kept $WORK"
    else
        rm -rf "$WORK" "$ROOT/target/ci-schemathesis"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
export TESSERA_ARGON2_MEMORY_KIB=64 TESSERA_ARGON2_ITERATIONS=1
export TESSERA_BIND=127.0.0.1:$PORT
# /metrics is on the operator listener, outside openapi.yaml; any free port (not 9090).
export TESSERA_OPS_BIND=127.0.0.1:0
export TESSERA_LOGIN_MAX_FAILURES=1000000
# The run may outlast the default 5-minute access token.
export TESSERA_ACCESS_TOKEN_TTL=1h
# rotateKeys succeeds once the next key has been published for max-age (default 600 s).
export TESSERA_JWKS_MAX_AGE=1
# A Shared Signals long-poll that finds no SET answers after 1 s instead of 25 s.
export TESSERA_SSF_POLL_WAIT=1
unset DATABASE_URL TESSERA_ISSUER TESSERA_KEYS_DIR TESSERA_KEK

ADMIN_PASSWORD=st-admin-password-$RANDOM$RANDOM
USER_PASSWORD=st-user-password-$RANDOM$RANDOM
CLIENT_ID=st-service
(
    cd "$WORK"
    "$BIN" client add "$CLIENT_ID" --grant client_credentials --grant password \
        --scope st:read --audience https://api.st.example --audience "$BASE/admin" --role st-service \
        --can introspect --can events > client_secret
    "$BIN" client add st-web --public --grant password --scope profile \
        --audience https://api.st.example > /dev/null
    # Throwaway clients the `clients` pass may change, rotate and remove.
    "$BIN" client add st-fuzz-a --grant client_credentials --scope st:read > /dev/null
    "$BIN" client add st-fuzz-b --public --grant password --scope profile > /dev/null
    printf '%s\n' "$ADMIN_PASSWORD" | "$BIN" user add admin --role admin --password-stdin > admin_id
    printf '%s\n' "$ADMIN_PASSWORD" | "$BIN" user add admin2 --role admin --password-stdin > /dev/null
    printf '%s\n' "$USER_PASSWORD" | "$BIN" user add st-user --role st-reader --password-stdin > user_id
    "$BIN" client add st-ssf --grant client_credentials --can ssf > ssf_secret
) 2> "$WORK/setup.log" || { cat "$WORK/setup.log" >&2; exit 1; }
CLIENT_SECRET=$(cat "$WORK/client_secret")
[[ -n "$CLIENT_SECRET" ]] || { log "no client secret printed"; exit 1; }

log "starting tessera serve on $BASE"
(cd "$WORK" && exec "$BIN" serve) > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { log "server exited early"; exit 1; }
    sleep 0.1
done
curl -fsS -o /dev/null "$BASE/readyz" || { log "server not ready after 30 s"; exit 1; }

json_field() { "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
password_grant() {
    curl -fsS -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=password -d "username=$1" \
        --data-urlencode "password=$2" "${@:3}" "$BASE/token"
}
# The admin API takes only tokens issued for its audience (RFC 8707 `resource`).
ADMIN_TOKEN=$(password_grant admin "$ADMIN_PASSWORD" -d "resource=$BASE/admin" | json_field access_token)
ADMIN2_TOKEN=$(password_grant admin2 "$ADMIN_PASSWORD" -d "resource=$BASE/admin" | json_field access_token)
CLIENT_TOKEN=$(curl -fsS -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials \
    "$BASE/token" | json_field access_token)
# A Shared Signals receiver: a client with the `ssf` capability manages its own streams.
SSF_TOKEN=$(curl -fsS -u "st-ssf:$(cat "$WORK/ssf_secret")" -d grant_type=client_credentials \
    "$BASE/token" | json_field access_token)
# Sanity: the Basic credentials work on /introspect and both tokens are live.
for t in "$ADMIN_TOKEN" "$CLIENT_TOKEN"; do
    active=$(curl -fsS -u "$CLIENT_ID:$CLIENT_SECRET" --data-urlencode "token=$t" \
        "$BASE/introspect" | json_field active)
    [[ "$active" == True ]] || { log "a freshly issued token is not active"; exit 1; }
done

# A second, ordinary user whose id, session and tokens the fuzzer may use (dictionaries
# below), so that getUser, listUserSessions, revokeSession, /revoke, /introspect and the
# refresh grant reach their success paths too, without touching the admin's session.
USER_ID=$(cat "$WORK/user_id")
USER_GRANT=$(password_grant st-user "$USER_PASSWORD")
USER_TOKEN=$(json_field access_token <<< "$USER_GRANT")
USER_REFRESH=$(json_field refresh_token <<< "$USER_GRANT")
# A second session of st-user, used only as the `sid` of revokeSession (the first one is
# likely revoked early through /revoke or refresh-token reuse).
USER_SID=$(password_grant st-user "$USER_PASSWORD" | json_field access_token |
    "$VENV/bin/python" -c 'import base64,json,sys; p=sys.stdin.read().split(".")[1]
print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["sid"])')

# Dictionaries of .ci/schemathesis.toml (`from-file`, relative to .ci/): one quoted value a line.
DICT=$ROOT/target/ci-schemathesis
mkdir -p "$DICT"
dict() { local f=$DICT/$1.dict; shift; printf '"%s"\n' "$@" > "$f"; }
dict introspect-tokens "$ADMIN_TOKEN" "$CLIENT_TOKEN" "$USER_TOKEN" "$USER_REFRESH"
dict user-tokens "$USER_TOKEN" "$USER_REFRESH"
dict user-ids "$USER_ID"
dict session-ids "$USER_SID"
dict usernames st-user
dict passwords "$USER_PASSWORD"
dict client-ids st-fuzz-a st-fuzz-b

# Read by .ci/schemathesis.toml through ${...} placeholders.
export ST_BASIC_USER=$CLIENT_ID ST_BASIC_PASSWORD=$CLIENT_SECRET

# Run from the temp dir so that nothing (.hypothesis/, .schemathesis/, reports) lands in
# the work tree; no example database, so a run never replays an earlier run's cases.
export HYPOTHESIS_STORAGE_DIRECTORY=$WORK/hypothesis
# st_run NAME BEARER_TOKEN [FILTER ARGS...]
PASSES=${ST_PASSES:-main users keys clients ssf}
st_run() {
    local name=$1 token=$2 rc=0 start=$SECONDS
    shift 2
    [[ " $PASSES " == *" $name "* ]] || { log "$name: skipped (ST_PASSES)"; return 0; }
    local cmd=(
        timeout --signal=INT --kill-after=30 "$TIMEOUT"
        "$VENV/bin/st" --config-file "$ROOT/.ci/schemathesis.toml" run "$ROOT/openapi.yaml"
        --url "$BASE"
        "$@"
        ${ST_CHECKS:+--checks "$ST_CHECKS"}
        --max-examples "$MAX_EXAMPLES"
        --seed "$SEED"
        --generation-database none
        --request-timeout 35
        --workers "${ST_WORKERS:-1}"
        --report "${ST_REPORT:-junit}" --report-dir "$WORK/report-$name"
        --no-color
    )
    log "$name: ${cmd[*]}"
    (cd "$WORK" && ST_ADMIN_TOKEN=$token "${cmd[@]}") || rc=$?
    if [[ $rc -eq 124 || $rc -eq 137 ]]; then
        log "$name: st run did not finish within ST_TIMEOUT=$TIMEOUT s"
    fi
    if [[ $rc -ne 0 ]]; then
        log "$name: FAILED (exit $rc) after $((SECONDS - start)) s; seed $SEED"
        exit "$rc"
    fi
    log "$name: passed in $((SECONDS - start)) s"
}

# The bearer token must have survived a pass: otherwise most of its bearer cases only
# exercised 401, and the pass proved little. Say so and fail.
check_alive() {
    local active
    [[ " $PASSES " == *" $1 "* ]] || return 0
    active=$(curl -fsS -u "$CLIENT_ID:$CLIENT_SECRET" --data-urlencode "token=$2" \
        "$BASE/introspect" | json_field active)
    [[ "$active" == True ]] || { log "$1: the bearer token was invalidated during the pass"; exit 1; }
}

# Operations that can invalidate the bearer token mid-run, after which every bearer
# operation would only ever see 401: setUserRoles, disableUser, setUserPassword and
# deleteUser bump the user's `ver` and revoke their sessions (enableUser undoes a disable) (the admin's id is in /userinfo's `sub`, which stateful
# testing could link to `{id}`); rotateKeys with `revoke_current` revokes the key that
# signed every token so far; updateClient, rotateClientSecret and deleteClient could
# narrow or remove the client the token was issued through. So four passes:
#  - main: everything else, with admin's token, which must survive;
#  - users: setUserRoles, disableUser, enableUser, setUserPassword and deleteUser, with admin2's token, which must survive (no
#    operation of that pass returns admin2's id, and none is offered);
#  - clients: updateClient, rotateClientSecret and deleteClient, with admin2's token, which
#    must survive: a change to st-service (the client its session and the Basic
#    credentials belong to) could revoke it, so these run apart from the list that names
#    it, on the throwaway clients st-fuzz-a and st-fuzz-b (dictionary `client-ids`) or
#    ids that do not exist;
#  - keys: rotateKeys, with admin2's token, which must survive: the config pins
#    `revoke_current` to false, which schemathesis 4.32.5 honours in every phase but the
#    coverage phase (it sent `true` there), so this pass runs without that phase.
# And one more for a different caller:
#  - ssf: the Shared Signals stream management and poll endpoints (/ssf/*), with the token of
#    st-ssf, a client with the `ssf` capability (with the admin's token every one of them
#    would only answer 403).
st_run main "$ADMIN_TOKEN" \
    --exclude-operation-id setUserRoles --exclude-operation-id disableUser \
    --exclude-operation-id enableUser --exclude-operation-id setUserPassword \
    --exclude-operation-id deleteUser --exclude-operation-id rotateKeys \
    --exclude-operation-id updateClient --exclude-operation-id rotateClientSecret \
    --exclude-operation-id deleteClient --exclude-path-regex '^/ssf/'
check_alive main "$ADMIN_TOKEN"
st_run users "$ADMIN2_TOKEN" --include-operation-id setUserRoles --include-operation-id disableUser \
    --include-operation-id enableUser --include-operation-id setUserPassword \
    --include-operation-id deleteUser
check_alive users "$ADMIN2_TOKEN"
st_run keys "$ADMIN2_TOKEN" --include-operation-id rotateKeys --phases examples,fuzzing,stateful
check_alive keys "$ADMIN2_TOKEN"
st_run clients "$ADMIN2_TOKEN" --include-operation-id updateClient \
    --include-operation-id rotateClientSecret --include-operation-id deleteClient
check_alive clients "$ADMIN2_TOKEN"
st_run ssf "$SSF_TOKEN" --include-path-regex '^/ssf/'
check_alive ssf "$SSF_TOKEN"
log "passed in $((SECONDS - total_start)) s in all"
