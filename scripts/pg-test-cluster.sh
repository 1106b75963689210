#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the `postgres` tests.
#
#   eval "$(scripts/pg-test-cluster.sh start /tmp/herd-pg)"   # prints the export lines
#   cargo test --features sim,postgres
#   scripts/pg-test-cluster.sh stop /tmp/herd-pg
#
# Exports HERD_TEST_PG_URL (a trust-authenticated superuser `herd` on 127.0.0.1) and
# HERD_TEST_PG_CTL (a pg_ctl command line for this cluster; the tests append `stop`/`start` to
# restart the database mid-run). As root, the cluster runs as the user `herdpg` (created if
# missing), since PostgreSQL refuses to run as root. Installs nothing: .ci/run does that.
set -euo pipefail
cmd=${1:?usage: pg-test-cluster.sh start|stop DIR}
dir=${2:?usage: pg-test-cluster.sh start|stop DIR}

bindir=""
if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
  bindir=$(pg_config --bindir)
else
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
fi
[ -n "$bindir" ] && [ -x "$bindir/initdb" ] || { echo "pg-test-cluster: no PostgreSQL server binaries found" >&2; exit 1; }

as_owner=()
if [ "$(id -u)" = 0 ]; then
  id herdpg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin herdpg
  as_owner=(runuser -u herdpg --)
fi

case "$cmd" in
start)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown herdpg "$dir"
  port=${HERD_TEST_PG_PORT:-$(( 20000 + RANDOM % 20000 ))}
  if [ ! -d "$dir/data" ]; then
    "${as_owner[@]}" "$bindir/initdb" -D "$dir/data" -U herd --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  mkdir -p "$dir/sock"; [ "$(id -u)" = 0 ] && chown herdpg "$dir/sock"
  ctl="${as_owner[*]} $bindir/pg_ctl -D $dir/data -l $dir/server.log -o '-p $port -k $dir/sock -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off'"
  eval "$ctl -w start" >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
  "$bindir/psql" -h 127.0.0.1 -p "$port" -U herd -d postgres -qAtc "CREATE DATABASE herd" 2>/dev/null || true
  echo "$ctl" >"$dir/ctl"
  echo "export HERD_TEST_PG_URL='postgres://herd@127.0.0.1:$port/herd'"
  printf 'export HERD_TEST_PG_CTL=%q\n' "$ctl"
  ;;
stop)
  [ -f "$dir/ctl" ] && eval "$(cat "$dir/ctl") -m immediate stop" >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
*) echo "usage: pg-test-cluster.sh start|stop DIR" >&2; exit 2 ;;
esac
