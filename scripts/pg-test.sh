#!/usr/bin/env bash
# Runs the settlement tests against a real PostgreSQL 15: starts a throwaway cluster in a temp
# dir on a free loopback port (as the `postgres` user when run as root, because the server
# refuses to run as root), exports SETTLEMENT_PG_URL, runs the command (by default the
# settlement crate's tests), then stops the server and removes the cluster.
#
#   scripts/pg-test.sh                                   # cargo test -p settlement
#   scripts/pg-test.sh cargo run --release -p settlement --bin settlement-bench -- --backend postgres
set -euo pipefail
cd "$(dirname "$0")/.."

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
dir=$(mktemp -d /tmp/settlement-pg.XXXXXX)
chmod 755 "$dir"
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$dir"
  as_pg=(runuser -u postgres --)
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

cleanup() {
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

"${as_pg[@]}" "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust --no-instructions >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log"; exit 1; }
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null \
  || { cat "$dir/server.log"; exit 1; }

export SETTLEMENT_PG_URL="host=127.0.0.1 port=$port user=postgres dbname=postgres"
echo "pg-test: PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (cluster $dir)"

if [ $# -eq 0 ]; then
  set -- cargo test -p settlement
fi
"$@"
