#!/usr/bin/env bash
# A private PostgreSQL cluster on 127.0.0.1 for development and tests, built from the
# server binaries the machine already has, so nothing system-wide is configured.
#
#   deploy/local/postgres.sh start    create the cluster if needed, start it, print
#                                     its URL
#   deploy/local/postgres.sh stop     fast shutdown (open sessions are rolled back)
#   deploy/local/postgres.sh status   "running <url>" (exit 0) or "stopped" (exit 3)
#   deploy/local/postgres.sh url      print the URL of the running cluster
#
# Environment:
#   ARBOR_PG_DIR      state dir (default .local/postgres); the cluster is <state>/data
#   PGPORT            port to listen on (default: the last one if free, else any free)
#   ARBOR_PG_OS_USER  account that runs the server when root starts it (default arbor)
#   ARBOR_PG_BIN      folder holding initdb, pg_ctl and psql (default: from PATH)
#
# Only machine-readable values go to stdout; progress and errors go to stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"

STATE_DIR="${ARBOR_PG_DIR:-$REPO_ROOT/.local/postgres}"
DATA_DIR="$STATE_DIR/data"
SOCKET_DIR="$STATE_DIR/socket"
LOG_FILE="$STATE_DIR/postgres.log"
URL_FILE="$STATE_DIR/url"
# Rewritten on every start; postgresql.conf includes it, so initdb's file stays stock.
LOCAL_CONF="$DATA_DIR/arbor.conf"

DB_ROLE="arbor"
DB_NAME="arbor"
START_TIMEOUT_SECONDS=60

say() { echo "postgres.sh: $*" >&2; }
die() { say "$*"; exit 1; }

find_pg_bin() {
  local initdb candidate
  if [[ -n "${ARBOR_PG_BIN:-}" ]]; then
    echo "$ARBOR_PG_BIN"
  elif initdb="$(command -v initdb)"; then
    dirname "$(readlink -f "$initdb")"
  else
    # Debian keeps the server binaries off PATH, one folder per major version.
    for candidate in /usr/lib/postgresql/*/bin; do
      [[ -x "$candidate/initdb" ]] && echo "$candidate"
    done | sort -V | tail -n 1
  fi
}

PG_BIN="$(find_pg_bin)"
[[ -n "$PG_BIN" && -x "$PG_BIN/initdb" && -x "$PG_BIN/pg_ctl" ]] ||
  die "PostgreSQL server binaries not found; install them (apt-get install postgresql)"
PSQL="$PG_BIN/psql"
[[ -x "$PSQL" ]] || PSQL="$(command -v psql)" || die "psql not found"

# initdb and postgres refuse to run as root, so root runs them as an unprivileged
# account instead; anyone else runs them as themselves.
if ((EUID == 0)); then
  OS_USER="${ARBOR_PG_OS_USER:-arbor}"
else
  OS_USER="$(id -un)"
fi

as_owner() {
  # From the state dir: the account may not be allowed into the caller's cwd.
  if ((EUID == 0)); then
    (cd "$STATE_DIR" && runuser -u "$OS_USER" -- "$@")
  else
    (cd "$STATE_DIR" && "$@")
  fi
}

ensure_os_user() {
  ((EUID == 0)) || return 0
  getent passwd "$OS_USER" >/dev/null && return 0
  say "creating system account $OS_USER to own the cluster"
  # A parallel start may create it first; only a still-missing account is an error.
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$OS_USER" 2>/dev/null ||
    getent passwd "$OS_USER" >/dev/null ||
    die "could not create system account $OS_USER"
}

prepare_state_dir() {
  mkdir -p "$STATE_DIR"
  if ((EUID == 0)); then
    chown "$OS_USER:" "$STATE_DIR"
    # A parent the account cannot enter (pytest's /tmp/pytest-of-root is 0700) would
    # make initdb fail with a confusing message much later.
    as_owner test -w "$STATE_DIR" ||
      die "$OS_USER cannot reach $STATE_DIR;" \
        "use a state dir under a world-searchable path such as /tmp"
  fi
  # The server refuses a socket path longer than the kernel's 107-byte limit.
  ((${#SOCKET_DIR} + 18 <= 107)) ||
    die "$SOCKET_DIR is too long a path for a Unix socket; use a shorter ARBOR_PG_DIR"
}

# One start or stop at a time per state dir: parallel callers would otherwise race
# through initdb and pg_ctl on one data dir.
lock_state_dir() {
  exec {STATE_LOCK_FD}>"$STATE_DIR/.lock"
  flock "$STATE_LOCK_FD"
}

is_running() {
  [[ -f "$DATA_DIR/PG_VERSION" ]] &&
    as_owner "$PG_BIN/pg_ctl" status -D "$DATA_DIR" >/dev/null 2>&1
}

configured_port() {
  sed -n "s/^port = \([0-9]*\)$/\1/p" "$LOCAL_CONF" 2>/dev/null
}

port_free() {
  python3 -c '
import socket, sys
s = socket.socket()
# As the server does: connections it just closed must not count as the port in use.
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
' "$1"
}

free_port() {
  python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
'
}

# Keeping the last port when it is still free gives a developer a stable URL across
# restarts; tests take whatever URL start prints.
choose_port() {
  local previous
  if [[ -n "${PGPORT:-}" ]]; then
    echo "$PGPORT"
    return 0
  fi
  previous="$(configured_port)"
  if [[ -n "$previous" ]] && port_free "$previous"; then
    echo "$previous"
  else
    free_port
  fi
}

init_cluster() {
  # Built aside and moved in whole, so an interrupted init never passes for a
  # cluster (PG_VERSION is what marks one).
  local staging="$STATE_DIR/data.partial"
  say "creating a new cluster in $DATA_DIR"
  rm -rf "$staging"
  # C locale: identical sorting on every machine; the bootstrap superuser is the
  # conventional "postgres" whatever account runs the server.
  as_owner "$PG_BIN/initdb" --pgdata="$staging" --username=postgres \
    --auth=trust --encoding=UTF8 --no-locale --no-instructions \
    >"$STATE_DIR/initdb.log" 2>&1 ||
    { cat "$STATE_DIR/initdb.log" >&2; die "initdb failed"; }

  # Trust is safe only because nothing but loopback and this private socket listen.
  cat >"$staging/pg_hba.conf" <<'EOF'
# Written by deploy/local/postgres.sh: a private test cluster, loopback only.
local all all              trust
host  all all 127.0.0.1/32 trust
EOF
  echo "include_if_exists = 'arbor.conf'" >>"$staging/postgresql.conf"
  mv "$staging" "$DATA_DIR"
}

write_local_conf() {
  local port="$1"
  cat >"$LOCAL_CONF" <<EOF
# Written by deploy/local/postgres.sh on every start; edits are lost.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$SOCKET_DIR'
# Room for the services' pools plus parallel test workers.
max_connections = 200
shared_buffers = 128MB
# Timestamps without a zone must not depend on the machine they ran on.
timezone = 'UTC'
log_timezone = 'UTC'
EOF
  ((EUID != 0)) || chown "$OS_USER:" "$LOCAL_CONF"
}

psql_admin() {
  as_owner "$PSQL" --no-psqlrc --quiet -v ON_ERROR_STOP=1 \
    -h "$SOCKET_DIR" -p "$(configured_port)" -U postgres -d postgres
}

ensure_role_and_database() {
  # \gexec runs the generated statement only when the row exists, which makes both
  # creations idempotent; CREATE DATABASE cannot run inside a DO block.
  psql_admin >/dev/null <<EOF
SELECT 'CREATE ROLE $DB_ROLE LOGIN SUPERUSER'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_ROLE')\\gexec
SELECT 'CREATE DATABASE $DB_NAME OWNER $DB_ROLE'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME')\\gexec
EOF
}

url_for() {
  echo "postgresql+asyncpg://$DB_ROLE@127.0.0.1:$(configured_port)/$1"
}

start() {
  local port
  ensure_os_user
  prepare_state_dir
  lock_state_dir
  if ! is_running; then
    [[ -f "$DATA_DIR/PG_VERSION" ]] || init_cluster
    port="$(choose_port)"
    write_local_conf "$port"
    # Trust on the socket is acceptable only while no other account can open it.
    as_owner mkdir -p "$SOCKET_DIR"
    as_owner chmod 0700 "$SOCKET_DIR"
    say "starting on 127.0.0.1:$port (log: $LOG_FILE)"
    # The server must not inherit the state lock, or it would hold it for its life.
    as_owner "$PG_BIN/pg_ctl" start -D "$DATA_DIR" -l "$LOG_FILE" -w \
      -t "$START_TIMEOUT_SECONDS" >/dev/null {STATE_LOCK_FD}>&- ||
      { tail -n 30 "$LOG_FILE" >&2; die "server did not start"; }
  fi
  ensure_role_and_database
  url_for "$DB_NAME" | tee "$URL_FILE"
}

stop() {
  [[ -d "$STATE_DIR" ]] && lock_state_dir
  if ! is_running; then
    rm -f "$URL_FILE"
    say "not running"
    return 0
  fi
  # Fast: roll back open sessions instead of waiting for test clients to leave.
  as_owner "$PG_BIN/pg_ctl" stop -D "$DATA_DIR" -m fast -w >/dev/null
  rm -f "$URL_FILE"
  say "stopped"
}

status() {
  if is_running; then
    echo "running $(url_for "$DB_NAME")"
  else
    echo "stopped"
    return 3
  fi
}

url() {
  is_running || die "no cluster running in $DATA_DIR"
  url_for "$DB_NAME"
}

case "${1:-}" in
  start | stop | status | url) "$1" ;;
  *) die "usage: $0 start|stop|status|url" ;;
esac
