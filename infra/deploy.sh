#!/usr/bin/env bash
# A deployment of Pinhole's roles as separate processes, on this machine:
# users x1, images x2, thumbnails x2, search x1, gateway x1, each role on
# its own Postgres database, all on one Kafka, one S3 bucket and one Redis
# (infra/stack.sh), behind nginx on one port (which caches the gateway's
# anonymous pages as a CDN would, and derivatives behind the server's
# signed /blobs/ links; see infra/nginx.conf).
#
#   infra/deploy.sh up     [--name NAME] [--port PORT] [--bin PATH]
#   infra/deploy.sh status [--name NAME]
#   infra/deploy.sh down   [--name NAME] [--drop]
#
# NAME (default pinhole-deploy) names the databases (NAME_users, ...), the
# S3 bucket, the Kafka namespace and the state directory
# infra/.run/deploy-NAME/ (logs, pids, nginx.conf, nginx's caches). nginx
# serves the public API and the web pages on PORT (default 8000) and the
# roles' /internal/v1 API, for each other, on PORT+1; the role processes
# listen on PORT+10 to PORT+16. PATH is
# the pinhole binary (default: built with `cargo build -p pinhole`).
# `down --drop` also drops the databases and empties the bucket.
#
# PINHOLE_SIGNUP_LIMIT and PINHOLE_BLOB_LINKS, when set in the environment,
# reach the processes. PINHOLE_BLOB_LINKS is `proxy` unless set: derivative
# links go through nginx, which keeps them (`redirect`: nginx keeps
# redirects to presigned S3 URLs; `direct`: presigned S3 URLs that bypass
# nginx).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
NAME=pinhole-deploy
PORT=8000
BIN=
DROP=
COMMAND=${1:-}
[ $# -gt 0 ] && shift
while [ $# -gt 0 ]; do
  case "$1" in
    --name) NAME=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --drop) DROP=1; shift ;;
    *) echo "deploy: unknown option $1" >&2; exit 2 ;;
  esac
done
if ! [[ $NAME =~ ^[a-z0-9][a-z0-9-]{1,40}[a-z0-9]$ ]]; then
  echo "deploy: --name must be 3-42 lower-case letters, digits and dashes (it names an S3 bucket)" >&2
  exit 2
fi
if ! [[ $PORT =~ ^[0-9]+$ ]] || [ "$PORT" -lt 1024 ] || [ "$PORT" -gt 65000 ]; then
  echo "deploy: --port must be a number from 1024 to 65000" >&2
  exit 2
fi

STATE=${PINHOLE_INFRA_STATE:-$HERE/.run}/deploy-$NAME
DB_PREFIX=${NAME//-/_}
INTERNAL_PORT=$((PORT + 1))
# role:instance:port
PROCESSES=("users:1:$((PORT + 10))" "images:1:$((PORT + 11))" "images:2:$((PORT + 12))"
  "thumbnails:1:$((PORT + 13))" "thumbnails:2:$((PORT + 14))" "search:1:$((PORT + 15))"
  "gateway:1:$((PORT + 16))")
ROLES=(users images thumbnails search gateway)
PG=postgres://postgres@127.0.0.1:5432
S3_ENDPOINT=http://127.0.0.1:9000

log() { echo "deploy: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

psql_admin() { psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -v ON_ERROR_STOP=1 -qtAc "$1"; }

python() { "${PINHOLE_INFRA_STATE:-$HERE/.run}/venv/bin/python" "$@"; }

# GET url; prints the status code (000 when nothing answers).
http_status() {
  python - "$1" <<'PY'
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=5).status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
PY
}

bucket() { # PUT or DELETE-everything
  python - "$1" "$S3_ENDPOINT" "$NAME" <<'PY'
import sys, urllib.request, urllib.error, re
action, endpoint, bucket = sys.argv[1:]
def call(method, path):
    req = urllib.request.Request(endpoint + path, method=method)
    return urllib.request.urlopen(req, timeout=30).read()
if action == "create":
    try:
        call("PUT", "/" + bucket)
    except urllib.error.HTTPError as e:
        if e.code != 409:
            raise
else:
    while True:
        listing = call("GET", "/" + bucket + "?list-type=2").decode()
        keys = re.findall(r"<Key>([^<]+)</Key>", listing)
        if not keys:
            break
        for key in keys:
            call("DELETE", "/" + bucket + "/" + urllib.request.quote(key))
    call("DELETE", "/" + bucket)
PY
}

ensure_nginx() {
  command -v nginx >/dev/null && return
  log "installing nginx"
  as_root apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >&2
}

write_nginx_conf() {
  local upstreams="" role port
  for role in "${ROLES[@]}"; do
    upstreams+="  upstream $role {"$'\n'
    for process in "${PROCESSES[@]}"; do
      IFS=: read -r r _ port <<<"$process"
      [ "$r" = "$role" ] && upstreams+="    server 127.0.0.1:$port max_fails=0;"$'\n'
    done
    upstreams+="  }"$'\n'
  done
  local user_line=""
  [ "$(id -u)" = 0 ] && user_line="user root;"
  sed -e "s|@STATE@|$STATE|g" -e "s|@PORT@|$PORT|g" -e "s|@INTERNAL_PORT@|$INTERNAL_PORT|g" \
    -e "s|@USER@|$user_line|" "$HERE/nginx.conf" >"$STATE/nginx.conf.tmp"
  # The upstream blocks go where the template marks them.
  python - "$STATE/nginx.conf.tmp" "$upstreams" >"$STATE/nginx.conf" <<'PY'
import sys
text = open(sys.argv[1]).read()
print(text.replace("  # @UPSTREAMS@\n", sys.argv[2]), end="")
PY
  rm -f "$STATE/nginx.conf.tmp"
}

start_process() { # role instance port
  local role=$1 instance=$2 port=$3
  local pidfile=$STATE/$role-$instance.pid
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    log "$role #$instance: already running"
    return
  fi
  mkdir -p "$STATE/$role-$instance"
  env -i PATH="$PATH" HOME="${HOME:-/root}" RUST_LOG="${RUST_LOG:-info}" \
    PINHOLE_LISTEN="127.0.0.1:$port" \
    PINHOLE_DATA_DIR="$STATE/$role-$instance" \
    PINHOLE_DATABASE_URL="$PG/${DB_PREFIX}_${role}" \
    PINHOLE_CACHE_URL=redis://127.0.0.1:6379 \
    PINHOLE_BUS_URL=kafka://127.0.0.1:9092 \
    PINHOLE_BUS_NAMESPACE="$NAME" \
    PINHOLE_BLOB_URL="s3://$NAME?endpoint=$S3_ENDPOINT&region=us-east-1&access_key_id=test&secret_access_key=test" \
    PINHOLE_PUBLIC_URL="http://127.0.0.1:$PORT" \
    PINHOLE_SIGNING_KEY="$(cat "$STATE/signing-key")" \
    PINHOLE_INTERNAL_TOKEN="$(cat "$STATE/internal-token")" \
    PINHOLE_ROLE_URLS="users=http://127.0.0.1:$INTERNAL_PORT,images=http://127.0.0.1:$INTERNAL_PORT,search=http://127.0.0.1:$INTERNAL_PORT" \
    PINHOLE_TRUSTED_PROXIES=127.0.0.1 \
    PINHOLE_SIGNUP_LIMIT="${PINHOLE_SIGNUP_LIMIT:-10}" \
    PINHOLE_BLOB_LINKS="${PINHOLE_BLOB_LINKS:-proxy}" \
    nohup "$BIN" serve --roles "$role" >"$STATE/$role-$instance.log" 2>&1 &
  echo $! >"$pidfile"
}

up() {
  "$HERE/stack.sh" up
  ensure_nginx
  if [ -z "$BIN" ]; then
    log "building pinhole"
    (cd "$ROOT" && cargo build -q -p pinhole)
    BIN=$ROOT/target/debug/pinhole
  fi
  [ -x "$BIN" ] || { log "no pinhole binary at $BIN"; exit 1; }
  mkdir -p "$STATE"
  [ -s "$STATE/signing-key" ] || od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$STATE/signing-key"
  [ -s "$STATE/internal-token" ] || od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$STATE/internal-token"
  local role
  for role in "${ROLES[@]}"; do
    if ! psql_admin "SELECT 1 FROM pg_database WHERE datname = '${DB_PREFIX}_$role'" | grep -q 1; then
      psql_admin "CREATE DATABASE ${DB_PREFIX}_$role"
    fi
  done
  bucket create
  # One process of each role first, so that each database is migrated by
  # one process only; then the others.
  local first=() rest=() process r instance port
  for process in "${PROCESSES[@]}"; do
    IFS=: read -r r instance port <<<"$process"
    if [ "$instance" = 1 ]; then first+=("$process"); else rest+=("$process"); fi
  done
  for batch in first rest; do
    local -n list=$batch
    for process in "${list[@]}"; do
      IFS=: read -r r instance port <<<"$process"
      start_process "$r" "$instance" "$port"
    done
    for process in "${list[@]}"; do
      IFS=: read -r r instance port <<<"$process"
      wait_ready "$r-$instance" "http://127.0.0.1:$port/readyz"
    done
  done
  write_nginx_conf
  if [ -f "$STATE/nginx.pid" ] && kill -0 "$(cat "$STATE/nginx.pid")" 2>/dev/null; then
    nginx -p "$STATE" -c "$STATE/nginx.conf" -s reload
  else
    nginx -p "$STATE" -c "$STATE/nginx.conf"
  fi
  wait_ready nginx "http://127.0.0.1:$PORT/readyz"
  log "up: http://127.0.0.1:$PORT (users x1, images x2, thumbnails x2, search x1, gateway x1; logs in $STATE)"
}

wait_ready() { # name url
  local status
  for _ in $(seq 1 300); do
    status=$(http_status "$2")
    [ "$status" = 200 ] && return 0
    if [ "$1" != nginx ] && ! kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; then
      log "$1 exited; the end of $STATE/$1.log:"
      tail -n 20 "$STATE/$1.log" >&2
      return 1
    fi
    sleep 0.2
  done
  log "$1 was not ready at $2 within 60 s (last status $status)"
  return 1
}

status() {
  local process r instance port
  for process in "${PROCESSES[@]}"; do
    IFS=: read -r r instance port <<<"$process"
    echo "$r #$instance on :$port: $(http_status "http://127.0.0.1:$port/readyz")"
  done
  echo "nginx on :$PORT: $(http_status "http://127.0.0.1:$PORT/readyz")"
}

down() {
  if [ -f "$STATE/nginx.pid" ]; then
    nginx -p "$STATE" -c "$STATE/nginx.conf" -s quit 2>/dev/null || true
  fi
  local pidfile pids=()
  for pidfile in "$STATE"/*.pid; do
    [ -f "$pidfile" ] || continue
    case "$pidfile" in */nginx.pid) continue ;; esac
    pids+=("$(cat "$pidfile")")
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  done
  # Stopping leaves the Kafka groups; give them a minute, then insist.
  for _ in $(seq 1 300); do
    local alive=0 pid
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.2
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  if [ -n "$DROP" ]; then
    local role
    for role in "${ROLES[@]}"; do
      psql_admin "DROP DATABASE IF EXISTS ${DB_PREFIX}_$role WITH (FORCE)"
    done
    bucket delete || true
    rm -rf "$STATE"
  fi
  log "down: $NAME"
}

case "$COMMAND" in
  up) up ;;
  status) status ;;
  down) down ;;
  *)
    echo "usage: $0 up|status|down [--name NAME] [--port PORT] [--bin PATH] [--drop]" >&2
    exit 2
    ;;
esac
