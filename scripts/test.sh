#!/usr/bin/env bash
# Runs every test of colmena: unit tests, end-to-end tests against the real binaries,
# Prometheus/promtool checks. Installs what it needs when it can (as root), otherwise says
# exactly what to install. Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

need_prometheus() {
  if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Debian's prometheus package (promtool, prometheus)"
    (apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1) || {
      apt-get update >/dev/null && apt-get install -y --no-install-recommends prometheus >/dev/null; }
  else
    echo "prometheus/promtool missing: run 'sudo apt-get install -y --no-install-recommends prometheus'" >&2
    exit 1
  fi
}
need_prometheus

echo "== building release binaries (one build, reused by every test)"
cargo build --release --workspace --bins
export COLMENA_BINS_BUILT=1

echo "== cargo test"
cargo test --release --workspace "$@"
