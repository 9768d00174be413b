#!/usr/bin/env bash
# Side-by-side: tessera and the peer (node-oidc-provider, ../shared/peers) under the
# same load driver (benches/load.rs), alternating, ROUNDS times. Loopback only.
#   PEERS=/tmp/peers benches/compare.sh       # a writable copy with `npm ci` done in oidc-provider/
#   PIN=1 ...: each server on CPU 0 alone, the load driver on CPU 1 (what "on one core" means)
#   SCENARIOS=client_credentials,refresh ...: a subset
#   BINS="/path/tessera-before /path/tessera-after" ...: several server builds, alternating
#   benches/quiet.sh env PIN=1 ... benches/compare.sh: the same while other work runs (root)
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS=${PEERS:-/tmp/peers}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
OUT=${OUT:-target/compare}
SCENARIOS=${SCENARIOS:-client_credentials,jwks,refresh}
SERVER_PIN=() LOAD_PIN=()
if [ "${PIN:-0}" = 1 ]; then
  SERVER_PIN=(taskset -c 0) LOAD_PIN=(taskset -c 1)
  export TESSERA_BENCH_WRAP="taskset -c 0"
fi
mkdir -p "$OUT"
cargo bench --bench load --no-run >/dev/null 2>&1
(cd "$PEERS/oidc-provider" && PEER_ALG=ES256 exec "${SERVER_PIN[@]}" node server.mjs) >"$OUT/peer.log" 2>&1 &
PEER=$!
trap 'kill $PEER 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:4100/jwks >/dev/null && break; sleep 0.1; done
for round in $(seq "$ROUNDS"); do
  for bin in ${BINS:-""}; do
    label=tessera${bin:+-$(basename "$bin")}
    TESSERA_BENCH_SERVER_BIN=${bin:-${TESSERA_BENCH_SERVER_BIN:-}} "${LOAD_PIN[@]}" \
      cargo bench --bench load -- -s "$SCENARIOS" -d "$DURATION" --warmup "$WARMUP" \
      --label "$label" --json "$OUT/$label-$round.json" 2>/dev/null | grep -E "req/s|floor"
  done
  "${LOAD_PIN[@]}" cargo bench --bench load -- -s "$SCENARIOS" -d "$DURATION" --warmup "$WARMUP" \
    --base-url http://127.0.0.1:4100 --client bench:bench-secret --jwks-path /jwks --server-pid "$PEER" \
    --label peer --json "$OUT/peer-$round.json" 2>/dev/null | grep -E "req/s"
done
