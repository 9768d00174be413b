#!/usr/bin/env bash
# The live-roles demo: tessera, two APIs (Rust on tessera-verify, Express on @tessera/verify)
# and a single-page app on @tessera/browser, on free loopback ports, with a fresh SQLite
# database in a temporary folder.
#
#   examples/live-roles/run.sh [--policy reissue|revoke]
#
# Prints one JSON line on stdout (app, issuer, api, express_api, database_url, keys_dir,
# username, password); logs go to the temporary folder; Ctrl-C (or SIGTERM) stops everything and
# removes it. Change the demo user's roles from another terminal with the printed values:
#   DATABASE_URL=... TESSERA_KEYS_DIR=... tessera user roles demo --set viewer
#
# Builds release binaries (`cargo build --release`, as the README's quickstart does, so
# a server built from it is reused); set TESSERA_BIN and LIVE_ROLES_API_BIN to use
# binaries built elsewhere. Builds the npm packages in js/ when needed (npm ci, npm run build)
# and bundles app.js with @tessera/browser (esbuild, from js/'s dev dependencies).
set -euo pipefail

policy=reissue
while [ $# -gt 0 ]; do
  case "$1" in
    --policy) policy="${2:?--policy needs reissue or revoke}"; shift 2 ;;
    --policy=*) policy="${1#--policy=}"; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
case "$policy" in reissue|revoke) ;; *) echo "--policy: reissue or revoke" >&2; exit 2 ;; esac

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
if [ -z "${TESSERA_BIN:-}" ] || [ -z "${LIVE_ROLES_API_BIN:-}" ]; then
  (cd "$root" && cargo build --quiet --release --bin tessera && \
     cargo build --quiet --release -p tessera-verify --example live_roles_api) >&2
fi
tessera="${TESSERA_BIN:-$target/release/tessera}"
api_bin="${LIVE_ROLES_API_BIN:-$target/release/examples/live_roles_api}"

# The npm packages: install when the lock file is newer than the install, build when a
# source is newer than its output (LIVE_ROLES_JS_READY=1: a caller has done both; leave js/ be).
js="$root/js"
if [ "${LIVE_ROLES_JS_READY:-}" != 1 ]; then
  if [ ! -f "$js/node_modules/.package-lock.json" ] || [ "$js/package-lock.json" -nt "$js/node_modules/.package-lock.json" ]; then
    (cd "$js" && npm ci --no-audit --no-fund --loglevel=error) >&2
  fi
  for pkg in browser verify; do
    if [ ! -f "$js/$pkg/dist/index.js" ] || [ -n "$(find "$js/$pkg/src" -newer "$js/$pkg/dist/index.js" -print -quit)" ]; then
      (cd "$js" && npm run build --silent) >&2
      break
    fi
  done
fi

dir="$(mktemp -d "${TMPDIR:-/tmp}/live-roles.XXXXXX")"
pids=()
stop() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Five free loopback ports: tessera, its operator listener, the two APIs, the app.
read -r p_id p_ops p_api p_express p_app < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
PY
)
issuer="http://127.0.0.1:$p_id"
api="http://127.0.0.1:$p_api"
express="http://127.0.0.1:$p_express"
app="http://127.0.0.1:$p_app"
export DATABASE_URL="sqlite:$dir/tessera.db"
export TESSERA_KEYS_DIR="$dir/keys"
export TESSERA_ISSUER="$issuer"
export TESSERA_BIND="127.0.0.1:$p_id"
export TESSERA_OPS_BIND="127.0.0.1:$p_ops"
export TESSERA_PERMISSION_CHANGE_POLICY="$policy"
export RUST_LOG="${RUST_LOG:-info}"

# Waits until URL answers 200 (at most about 30 s), or fails with the log.
wait_for() {
  for _ in $(seq 300); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    if ! kill -0 "$2" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "not ready: $1 (log: $3)" >&2; tail -n 20 "$3" >&2; return 1
}

"$tessera" serve >"$dir/tessera.log" 2>&1 &
pids+=($!)
wait_for "$issuer/readyz" "${pids[-1]}" "$dir/tessera.log"

username=demo
password="demo-$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')"
"$tessera" client add live-roles --public --grant authorization_code \
  --redirect-uri "$app/" --origin "$app" --post-logout-redirect-uri "$app/" \
  --scope openid --audience "$api" >/dev/null
secret="$("$tessera" client add live-roles-api --grant client_credentials --can events)"
echo "$password" | "$tessera" user add "$username" --role viewer --role editor --password-stdin >/dev/null
echo "admin-$password" | "$tessera" user add admin --role admin --password-stdin >/dev/null

# The page: index.html and app.js bundled with @tessera/browser and the Express API's URL.
mkdir "$dir/app"
cp "$here/index.html" "$dir/app/"
NODE_PATH="$js/node_modules" "$js/node_modules/.bin/esbuild" "$here/app.js" --bundle --format=esm \
  --target=es2022 --log-level=warning --define:EXPRESS_API="\"$express\"" --outfile="$dir/app/app.js" >&2

# Both APIs accept the app's tokens (audience $api) and follow the feed as live-roles-api.
TESSERA_VERIFY_CLIENT_SECRET="$secret" "$api_bin" --issuer "$issuer" --audience "$api" \
  --bind "127.0.0.1:$p_api" --client-id live-roles-api --app-bind "127.0.0.1:$p_app" \
  --app-dir "$dir/app" --app-client-id live-roles --role editor >"$dir/api.log" 2>&1 &
pids+=($!)
wait_for "$api/readyz" "${pids[-1]}" "$dir/api.log"
wait_for "$app/config.json" "${pids[-1]}" "$dir/api.log"
TESSERA_VERIFY_CLIENT_SECRET="$secret" node "$js/verify/examples/express.mjs" --issuer "$issuer" \
  --audience "$api" --host 127.0.0.1 --port "$p_express" --client-id live-roles-api \
  --cors-origin "$app" >"$dir/express.log" 2>&1 &
pids+=($!)
wait_for "$express/readyz" "${pids[-1]}" "$dir/express.log"

python3 -c 'import json, sys; print(json.dumps(dict(zip(
  ["app", "issuer", "api", "express_api", "database_url", "keys_dir", "username", "password", "policy", "logs"],
  sys.argv[1:]))))' "$app/" "$issuer" "$api" "$express" "$DATABASE_URL" "$TESSERA_KEYS_DIR" \
  "$username" "$password" "$policy" "$dir"
echo "open $app/ and sign in as $username; Ctrl-C stops the demo" >&2
wait -n "${pids[@]}" || true
echo "a process of the demo stopped; see the logs above" >&2
