#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs what is missing,
# starts the real backends (infra/stack.sh up), then runs every test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# C toolchain for the crates that compile C (librdkafka, SQLite, aws-lc).
missing=()
for tool in cc c++ make perl; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test: installing a C toolchain (missing: ${missing[*]})" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential perl >&2
fi
command -v cargo >/dev/null || { echo "test: cargo is required (https://rustup.rs)" >&2; exit 1; }

infra/stack.sh up

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  echo "test: cargo-nextest not found; running cargo test" >&2
  cargo test --workspace --no-fail-fast "$@"
fi
