#!/usr/bin/env bash
# What the benchmarks need beyond infra/stack.sh: PostGIS for the search
# benchmark's PostgreSQL side (`cargo bench -p pinhole-tests --bench
# search`), installing Debian's PostGIS for the running server's major
# version (postgresql-15-postgis-3 on bookworm); wrk and nginx for the
# detail page's benchmark (`cargo bench -p pinhole-tests --bench gateway`);
# vipsthumbnail, GraphicsMagick and heif-enc for the pixel pipeline's
# (`cargo bench -p pinhole-imaging --bench thumbnails`), and pyvips (at the
# version pinned in libs/imaging/benches/requirements.txt, over Debian's
# libvips) in a virtualenv, target/bench-venv, for its libvips reference of
# the derivative set. Each only when missing.
#
#   infra/bench-deps.sh
#
# Idempotent. Runs as root on Debian (or with sudo).
set -euo pipefail

PG_PORT=${PG_PORT:-5432}
log() { echo "bench-deps: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The load generator and the static-file reference of the gateway bench.
tools=()
command -v wrk >/dev/null || tools+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || tools+=(nginx)
command -v vipsthumbnail >/dev/null || tools+=(libvips-tools)
command -v gm >/dev/null || tools+=(graphicsmagick)
command -v heif-enc >/dev/null || tools+=(libheif-examples)
[ -x /usr/bin/time ] || tools+=(time)
if [ ${#tools[@]} -gt 0 ]; then
  log "installing ${tools[*]}"
  as_root apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${tools[@]}" >&2
fi

# pyvips for the thumbnails bench's libvips derivative set, in its own
# virtualenv (the bench looks for target/bench-venv/bin/python).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv=target/bench-venv
if [ ! -x "$venv/bin/pip" ]; then
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    log "installing python3-venv"
    as_root apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >&2
    python3 -m venv --clear "$venv" >&2
  fi
fi
grep -qx "pyvips==$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("pyvips"))' 2>/dev/null)" \
  libs/imaging/benches/requirements.txt || {
  log "installing pyvips into $venv"
  "$venv/bin/pip" install -q -r libs/imaging/benches/requirements.txt >&2
}
"$venv/bin/python" -c 'import pyvips' || {
  log "pyvips is installed in $venv but cannot load libvips (apt-get install libvips42)"
  exit 1
}

command -v psql >/dev/null || {
  log "installing postgresql-client"
  as_root apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client >&2
}

psql_q() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc "$1"; }

if ! major=$(psql_q 'SHOW server_version_num' 2>/dev/null); then
  log "no PostgreSQL answers on 127.0.0.1:$PG_PORT: run infra/stack.sh up first"
  exit 1
fi
major=$((major / 10000))

if [ -n "$(psql_q "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")" ]; then
  log "postgis: already available for PostgreSQL $major"
else
  package="postgresql-$major-postgis-3"
  log "installing $package"
  as_root apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >&2
  [ -n "$(psql_q "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")" ] || {
    log "$package is installed but the server does not list postgis; is the server on 127.0.0.1:$PG_PORT PostgreSQL $major from Debian?"
    exit 1
  }
  log "postgis: available"
fi
