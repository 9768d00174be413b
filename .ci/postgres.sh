#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the test suite, from the machine's own
# binaries (`pg_config --bindir`), on a free loopback port, owned by the
# `postgres` system user (the server refuses to run as root).
#
#   eval "$(.ci/postgres.sh start)"   # exports TESSERA_TEST_POSTGRES and TESSERA_PG_DIR
#   .ci/postgres.sh restart [N]       # fast stop (connections are cut), N s down, start
#   .ci/postgres.sh stop              # stops it and removes its folder
set -euo pipefail

bindir="$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
[ -x "$bindir/initdb" ] || { echo "no PostgreSQL server binaries (initdb) found" >&2; exit 1; }
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --no-create-home postgres
fi
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
start)
    dir="$(mktemp -d /tmp/tessera-pg.XXXXXX)"
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    as_pg "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    # fsync=off: a crash of a test cluster loses nothing anyone wants.
    echo "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" >"$dir/options"
    as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "$(cat "$dir/options")" start >&2 || { cat "$dir/server.log" >&2; exit 1; }
    echo "export TESSERA_PG_DIR=$dir"
    echo "export TESSERA_TEST_POSTGRES=postgres://postgres@127.0.0.1:$port/postgres"
    ;;
restart)
    # A fast restart (open connections are cut), as an operator or a crash would.
    dir="${TESSERA_PG_DIR:?TESSERA_PG_DIR is not set}"
    # An optional second argument keeps it down that many seconds.
    as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >&2
    sleep "${2:-0}"
    as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "$(cat "$dir/options")" start >&2
    ;;
stop)
    dir="${TESSERA_PG_DIR:?TESSERA_PG_DIR is not set}"
    if [ -d "$dir/data" ]; then
        as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|restart|stop" >&2
    exit 2
    ;;
esac
