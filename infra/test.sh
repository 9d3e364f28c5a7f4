#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs what is missing,
# starts the real backends (infra/stack.sh up), then runs every test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# C toolchain for the crates that compile C (librdkafka, SQLite, aws-lc,
# mozjpeg with its SIMD code in nasm, libwebp, libheif with cmake), and the
# codecs libheif is built against (HEVC: libde265; AV1: dav1d, libaom).
missing=()
for tool in cc c++ make perl nasm cmake pkg-config; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
for module in libde265 dav1d aom; do
  pkg-config --exists "$module" 2>/dev/null || missing+=("$module")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test: installing a C toolchain and codecs (missing: ${missing[*]})" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential perl nasm \
    cmake pkg-config libde265-dev libdav1d-dev libaom-dev >&2
fi
command -v cargo >/dev/null || { echo "test: cargo is required (https://rustup.rs)" >&2; exit 1; }

# Real photos and the tools the image tests use on them: camera JPEGs with
# EXIF (mate-backgrounds), exiftool to set orientation and GPS on copies,
# heif-enc to make HEIC and AVIF files, Node.js to run tus-js-client.
packages=()
[ -f /usr/share/backgrounds/mate/nature/Storm.jpg ] || packages+=(mate-backgrounds)
command -v exiftool >/dev/null || packages+=(libimage-exiftool-perl)
command -v heif-enc >/dev/null || packages+=(libheif-examples)
command -v npm >/dev/null || packages+=(nodejs npm)
# nginx fronts the separate-process deployment (infra/deploy.sh).
command -v nginx >/dev/null || packages+=(nginx)
# Debian's Chromium and its WebDriver, for the browser test (tests/browser.rs).
command -v chromium >/dev/null || packages+=(chromium)
command -v chromedriver >/dev/null || packages+=(chromium-driver)
if [ ${#packages[@]} -gt 0 ]; then
  echo "test: installing ${packages[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >&2
fi
# tus-js-client, at the version pinned in tests/tus/package-lock.json.
[ -d tests/tus/node_modules/tus-js-client ] || npm ci --prefix tests/tus --no-audit --no-fund >&2
# The official AsyncAPI parser, to validate the events document.
[ -d tests/asyncapi/node_modules/@asyncapi/parser ] || npm ci --prefix tests/asyncapi --no-audit --no-fund >&2
# axe-core and html-validate, run on the pages by the browser test.
[ -d tests/browser/node_modules/html-validate ] || npm ci --prefix tests/browser --no-audit --no-fund >&2

infra/stack.sh up

# A plain Kafka client and the CloudEvents SDK, which read the events as an
# outside consumer would; in the virtualenv infra/stack.sh made.
venv=${PINHOLE_INFRA_STATE:-infra/.run}/venv
"$venv/bin/python" -c 'import confluent_kafka, cloudevents' 2>/dev/null ||
  "$venv/bin/pip" install -q -r tests/cloudevents/requirements.txt >&2
# Schemathesis, which checks the served OpenAPI document against the
# server's answers (tests/startup/openapi.rs), at the pinned version.
grep -qx "schemathesis==$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" \
  tests/schemathesis/requirements.txt ||
  "$venv/bin/pip" install -q -r tests/schemathesis/requirements.txt >&2

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  echo "test: cargo-nextest not found; running cargo test" >&2
  cargo test --workspace --no-fail-fast "$@"
fi
