#!/usr/bin/env bash
# Runs every test of colmena: unit tests, end-to-end tests against the real binaries,
# Prometheus/promtool checks, the cashier's page in headless Chromium. Installs what it
# needs when it can (as root), otherwise says exactly what to install, then smoke-runs the benchmark harness. Usage: scripts/test.sh
# [extra cargo test args] (with args, the harness smoke run is skipped)
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

# The PostgreSQL tests start a private cluster from the server binaries (no service needed).
need_postgres() {
  local bin=${COLMENA_PG_BIN:-/usr/lib/postgresql/15/bin}
  if [ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ]; then return 0; fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Debian's postgresql-15 package (initdb, pg_ctl, postgres)"
    (apt-get install -y --no-install-recommends postgresql-15 >/dev/null 2>&1) || {
      apt-get update >/dev/null && apt-get install -y --no-install-recommends postgresql-15 >/dev/null; }
  else
    echo "PostgreSQL 15 server binaries missing in $bin: run 'sudo apt-get install -y postgresql-15'" \
      "or set COLMENA_PG_BIN" >&2
    exit 1
  fi
}
need_postgres
# The PostgreSQL power-cut test kills whatever holds files on its image with `fuser -k -m`
# (psmisc); without it the test falls back to killing the postmaster and waiting.
if ! command -v fuser >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  apt-get install -y --no-install-recommends psmisc >/dev/null 2>&1 || true
fi

# The cashier's page is tested in a real browser (tests/e2e/cashier_page.rs): Debian's chromium
# and chromium-driver. Without them those tests fail; COLMENA_SKIP_BROWSER_TESTS=1 skips them
# on a machine where they cannot be installed (never in CI, which runs as root).
need_chromium() {
  if [ -x /usr/bin/chromedriver ] && { [ -x /usr/lib/chromium/chromium ] || [ -x /usr/bin/chromium ]; }; then return 0; fi
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Debian's chromium and chromium-driver packages (the cashier's page tests)"
    (apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null 2>&1) || {
      apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null; }
  elif [ -n "${COLMENA_SKIP_BROWSER_TESTS:-}" ]; then
    echo "!! chromium/chromedriver missing: the cashier's page tests will SKIP (COLMENA_SKIP_BROWSER_TESTS is set)" >&2
  else
    echo "chromium/chromedriver missing: run 'sudo apt-get install -y --no-install-recommends chromium chromium-driver'" \
      "(or set COLMENA_SKIP_BROWSER_TESTS=1 to skip the browser tests)" >&2
    exit 1
  fi
}
need_chromium

# schemathesis (PyPI) fuzzes both services from their OpenAPI documents (tests/e2e/schemathesis.rs).
# Pinned, so a fixed seed generates the same cases on every machine; installed into a venv
# under target/ (no root, nothing system-wide). Bump the pin deliberately.
SCHEMATHESIS_VERSION=4.32.5
need_schemathesis() {
  local venv=target/schemathesis-venv
  if [ -n "${COLMENA_SCHEMATHESIS:-}" ]; then return 0; fi
  if [ -x "$venv/bin/st" ] && "$venv/bin/st" --version 2>/dev/null | grep -qx "st, version $SCHEMATHESIS_VERSION"; then
    export COLMENA_SCHEMATHESIS="$PWD/$venv/bin/st"; return 0
  fi
  echo "== installing schemathesis $SCHEMATHESIS_VERSION from PyPI into $venv"
  if command -v python3 >/dev/null 2>&1 && python3 -m venv "$venv" >/dev/null 2>&1 \
     && "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"; then
    export COLMENA_SCHEMATHESIS="$PWD/$venv/bin/st"
  else
    echo "!! could not install schemathesis (needs python3 with venv, and PyPI): the fuzzing test will SKIP" >&2
  fi
}
need_schemathesis
if [ -n "${COLMENA_SCHEMATHESIS:-}" ]; then export COLMENA_REQUIRE_SCHEMATHESIS=1; fi

echo "== building release binaries (one build, reused by every test)"
cargo build --release --workspace --bins
# tests/failpoints.rs: the same two programs with fault injection compiled in, under their own
# names (`*-failpoints`); every dependency above is reused, only colmena's crates are rebuilt.
cargo build --release --workspace --bin colmena-sucursal-failpoints --bin colmena-central-failpoints \
  --features colmena-sucursal/failpoints,colmena-central/failpoints
export COLMENA_BINS_BUILT=1

echo "== cargo test"
cargo test --release --workspace "$@"

# CI never judges speed, but it runs the benchmark harness at tiny sizes so the
# harness cannot rot (a server that does not start, a parser that no longer matches its
# tool's output). Skipped when the caller passes a test filter.
if [ $# -eq 0 ]; then
  echo "== benchmark harness smoke run (scripts/bench.sh --quick; never judged on speed)"
  scripts/bench.sh --quick --no-build
fi
