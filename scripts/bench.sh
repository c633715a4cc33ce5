#!/usr/bin/env bash
# scripts/bench.sh — every colmena benchmark figure (see BENCHMARKS.md) in one command.
#
#   scripts/bench.sh            full run (~15 min): builds release binaries, writes the full report to
#                               target/bench/report.md (BENCHMARKS.md is the one-page summary of it,
#                               edited by hand; earlier reports go to docs/benchmarks-history.md)
#   scripts/bench.sh --quick    smoke run (~15 s after the build, 1 s per figure) for CI: proves the harness
#                               still works end to end; prints its report instead of writing
#                               BENCHMARKS.md, and exits non-zero if the harness is broken
#                               (a server that does not start, wrk errors, non-2xx answers,
#                               a push-load that applies nothing). It never asserts on speed.
#                               KEEP_WORK=1 keeps the temp dir (logs, stores) after success.
#
# Options: --quick · --no-build (use the binaries already in target/release) ·
#          --out FILE · --rounds N (alternating rounds per ratio, default 5) ·
#          --duration S (wrk seconds per run, default 10) · --only-p5 (only P5, PostgreSQL
#          ingest; prints its rows instead of writing the report) · --only-p14 (only P14, the
#          sales reports; the same; REPORT_SALES=10000000 for the chain-scale load) · --install-oha (cargo install oha
#          once if missing, ~4 min build, for P2/P7) · --profile (perf-record the branch's
#          /sell under load, report in $WORK/profile-*.txt)
#
# Figures are ratios against a baseline measured in the same run, because these 2-core
# machines are shared and noisy (±15 % between runs on a quiet box; ×2 while neighbours
# run their test suites). Load generator and servers
# share the same 2 cores; every side of every ratio is measured under the same conditions.
#
# This script is the driver: it starts the processes, runs the load and saves what the tools
# print. Every number it reports is computed by `colmena-bench stats …` (bench/src/stats/,
# unit-tested on captured wrk, oha and /metrics output).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/release

QUICK=0 BUILD=1 OUT="" ROUNDS=5 DUR=10 INSTALL_OHA=0 PROFILE=0 ONLY_P5=0 ONLY_P14=0
ORIG_ARGS="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --no-build) BUILD=0 ;;
    --out) OUT=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --duration) DUR=$2; shift ;;
    --install-oha) INSTALL_OHA=1 ;;
    --profile) PROFILE=1 ;;
    --only-p5) ONLY_P5=1 ;;
    --only-p14) ONLY_P14=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
WARMUP=2 EVENTS=1000000 P4_BRANCHES=1000 P4_CONC=${P4_CONC:-32} P9_PRODUCTS=100000 P12_REQUESTS=5000
PENDING_TARGET=1000000 FILL_CHUNK=10 FILL_CAP=240
# P14: sales loaded for the reports (over REPORT_DAYS days, from P4_BRANCHES branches).
REPORT_SALES=${REPORT_SALES:-1000000} REPORT_DAYS=30 REPORT_REQUESTS=200
if [ "$QUICK" = 1 ]; then
  REPORT_SALES=20000 REPORT_REQUESTS=20
  ROUNDS=1 DUR=1 WARMUP=0 EVENTS=20000 P4_BRANCHES=20 P4_CONC=8 P9_PRODUCTS=1000 P12_REQUESTS=200
  PENDING_TARGET=10000 FILL_CHUNK=1 FILL_CAP=20
fi
WORK=$(mktemp -d /tmp/colmena-bench.XXXXXX)
[ -n "$OUT" ] || { if [ "$QUICK" = 1 ]; then OUT=$WORK/BENCHMARKS.quick.md; else mkdir -p "$ROOT/target/bench"; OUT=$ROOT/target/bench/report.md; fi; }
RAW=$WORK/raw.txt
: > "$RAW"
log() { echo "== $*" >&2; }
die() { echo "bench.sh: $*" >&2; exit 1; }

# ------------------------------------------------------------------ processes we started
PIDS=()
cleanup() {
  local rc=$?
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  pg_stop
  if [ -n "${SHM:-}" ]; then rm -rf "$SHM"; fi  # stores in RAM never outlive the run
  if [ "$rc" = 0 ] && [ "${KEEP_WORK:-0}" != 1 ]; then
    rm -rf "$WORK"
  else
    echo "bench.sh: work dir (servers' logs, wrk/oha output, stores) kept at $WORK" >&2
  fi
}
trap cleanup EXIT

# start NAME CMD... : runs CMD in the background (stdout/stderr to $WORK/NAME.{out,err}),
# waits for its "listening on ADDR" line; sets START_PID and START_ADDR.
start() {
  local name=$1; shift
  : > "$WORK/$name.out"  # exists before the poll below reads it, however the fork is scheduled
  "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
  START_PID=$!
  PIDS+=("$START_PID")
  local i
  for i in $(seq 600); do
    START_ADDR=$(sed -n 's/^listening on //p' "$WORK/$name.out" | head -1)
    [ -n "$START_ADDR" ] && return 0
    kill -0 "$START_PID" 2>/dev/null || { tail -5 "$WORK/$name.err" >&2; die "$name exited before listening"; }
    sleep 0.05
  done
  die "$name did not print 'listening on' within 30 s"
}

stop() {
  local pid=$1 i keep=()
  for i in "${PIDS[@]:-}"; do [ "$i" = "$pid" ] || keep+=("$i"); done
  PIDS=("${keep[@]:-}")
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

rss_note() { stats rss "$1"; }     # "X MiB (anonymous Y MiB)"
peak_mib() { stats peak-rss "$1"; }

# ------------------------------------------------------------------ numbers
# Computed by `colmena-bench stats` ($BENCH, set once the binaries are known, below).
stats() { "$BENCH" stats "$@"; }
# vars PREFIX STATS-ARGS... : the KEY=VALUE lines `colmena-bench stats STATS-ARGS` prints
# become the variables PREFIXKEY; an empty value means the tool did not print that figure.
vars() {
  local prefix=$1 out k v
  shift
  out=$(stats "$@") || die "colmena-bench stats $1 failed"
  while IFS='=' read -r k v; do
    if [ -n "$k" ]; then printf -v "$prefix$k" '%s' "$v"; fi
  done <<< "$out"
}
median() { stats median "$@"; }   # median [--decimals N] VALUES...
ratio() { stats ratio "$1" "$2"; }
fmt0() { stats round "$1"; }
met() {  # met VALUE ge|le GOAL
  if [ "$QUICK" = 1 ]; then stats met --quick "$@"; else stats met "$@"; fi
}

cpu_ticks() { local s; s=$(cat "/proc/$1/stat"); s=${s##*) }; set -- $s; echo $(( ${12} + ${13} )); }  # utime+stime
box_ticks() { stats box-ticks; }                                                                        # total, idle+iowait
HZ=$(getconf CLK_TCK)

# wrk_run LABEL ADDR PID [LUA] : WRK_RPS, WRK_P50, WRK_P99 (ms), WRK_CPU_US (server CPU µs per
# request: utime+stime of PID over the run ÷ requests — much less noisy than req/s),
# WRK_GEN_US (wrk's own CPU per request), WRK_IDLE (% of the box idle during the run) and
# WRK_REQUESTS. Fails on wrk errors or non-2xx answers.
wrk_run() {
  local label=$1 addr=$2 pid=$3 lua=${4:-$WORK/sell.lua} f=$WORK/wrk-$1.txt c0 c1 b0 b1
  if [ "$WARMUP" -gt 0 ]; then wrk -t2 -c64 -d"${WARMUP}s" -s "$lua" "http://$addr/sell" > /dev/null; fi
  c0=$(cpu_ticks "$pid"); b0=$(box_ticks)
  local TIMEFORMAT='%U %S'
  { time wrk -t2 -c64 -d"${DUR}s" --latency -s "$lua" "http://$addr/sell" > "$f"; } 2> "$f.time"
  c1=$(cpu_ticks "$pid"); b1=$(box_ticks)
  # shellcheck disable=SC2086  # b0 and b1 are "TOTAL IDLE": two arguments each
  vars WRK_ wrk "$f" --time "$f.time" --server-ticks $((c1 - c0)) --hz "$HZ" --box $b0 $b1
  [ -n "$WRK_RPS" ] && [ "${WRK_REQUESTS:-0}" -gt 0 ] || die "$label: wrk measured nothing (see $f)"
  echo "$label: $WRK_REQUESTS requests, $WRK_RPS req/s, p50 $WRK_P50 ms, p99 $WRK_P99 ms, server CPU $WRK_CPU_US µs/req, wrk CPU $WRK_GEN_US µs/req, box idle $WRK_IDLE %, non-2xx $WRK_NON2XX${WRK_SOCKET_ERRORS:+, $WRK_SOCKET_ERRORS}" | tee -a "$RAW" >&2
  [ "$WRK_NON2XX" = 0 ] || die "$label: $WRK_NON2XX non-2xx answers (see $f) — the figure would be meaningless"
}

# ------------------------------------------------------------------ build and tools
cd "$ROOT"
BUILD_NOTE="built by this run (cargo build --release)"
if [ "$BUILD" = 1 ]; then
  log "building release binaries (colmena-bench, colmena-sucursal, colmena-central)"
  if ! cargo build --release -p colmena-bench -p colmena-sucursal; then
    [ -x "$TARGET/colmena-sucursal" ] && [ -x "$TARGET/colmena-bench" ] || die "build failed and no binaries to fall back on"
    BUILD_NOTE="BUILD FAILED in this run; used the existing binaries in target/release"
    log "$BUILD_NOTE"
  fi
  cargo build --release -p colmena-central || log "colmena-central did not build; central figures will use an existing binary or be marked pending"
else
  BUILD_NOTE="--no-build: used the existing binaries in target/release"
fi
BENCH=$TARGET/colmena-bench SUC=$TARGET/colmena-sucursal CEN=$TARGET/colmena-central
[ -x "$BENCH" ] && [ -x "$SUC" ] || die "missing $BENCH or $SUC"
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing wrk (Debian)"
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
  else
    die "wrk is missing: sudo apt-get install -y wrk"
  fi
fi
if [ "$INSTALL_OHA" = 1 ] && ! command -v oha >/dev/null 2>&1; then
  log "cargo install oha (one-time, ~4 min on 2 cores)"
  cargo install oha --locked || log "cargo install oha failed; P2/P7 stay unmeasured"
fi
OHA=$(command -v oha || true)

cat > "$WORK/sell.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"product_id":"P1","quantity":1}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer t"
EOF
# The same sale spread over P1..P100, for runs that sync (10^6 units per product, see below).
cat > "$WORK/sell-many.lua" <<'EOF'
local i = 0
request = function()
  i = (i % 100) + 1
  return wrk.format("POST", "/sell", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer t"},
    '{"product_id":"P' .. i .. '","quantity":1}')
end
EOF
# Catalog for both the baseline and the branch: stock so large no sale is ever refused.
# P1 uses 10^9 units per product (nothing syncs: central is unreachable). Runs that sync use
# 10^6, so the first-boot seed is one adjustment event per product (larger stock travels in
# pieces of 10^6, which would add events to the drain being measured).
catalog() {  # catalog N STOCK FILE
  "$BENCH" catalog --products "$1" --stock "$2" > "$3"
}
catalog 100 1000000000 "$WORK/catalog.json"
catalog 100 1000000 "$WORK/catalog-sync.json"

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
NPROC=$(nproc)
read -r _ MEM_TOTAL _ _ _ _ MEM_AVAIL _ < <(free -g | grep '^Mem:')
MEM="$MEM_TOTAL GiB total, $MEM_AVAIL GiB available"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
GIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l)

branch_cmd() {  # branch_cmd DATADIR CENTRAL_URL CATALOG [extra...]
  local dir=$1 url=$2 cat=$3; shift 3
  echo "$SUC" --branch-id CUS --pos-token t --data-dir "$dir" --catalog "$cat" --central-url "$url" --listen 127.0.0.1:0 --startup-sync-timeout 1s "$@"
}

baseline_cmd() {  # baseline_cmd [extra...]: the in-memory baseline; with --durable-dir DIR, the durable floor
  echo "$BENCH" baseline --listen 127.0.0.1:0 --workers 2 --token t --catalog "$WORK/catalog.json" "$@"
}

central_works() { [ -x "$CEN" ] && "$CEN" --help >/dev/null 2>&1; }

# ------------------------------------------------------------------ P5 (PostgreSQL), run after P4
# A private cluster from the machine's PostgreSQL 15 binaries, with the server's default
# settings (fsync, synchronous_commit and full_page_writes on: a 200 means the push is
# durable, as with SQLite's synchronous=FULL). initdb refuses root, so as root the server
# runs as the `postgres` user in a dir it owns.
PG_BIN=${COLMENA_PG_BIN:-/usr/lib/postgresql/15/bin}
P5_1=n/a P5_2=n/a P5_NOTE="" PG_DIR=""
pg_as() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_stop() {
  [ -n "${PG_DIR:-}" ] || return 0
  pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop > /dev/null 2>&1 || true
  [ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$PG_DIR"
  PG_DIR=""
}
run_p5() {
  if ! central_works || [ ! -x "$PG_BIN/initdb" ]; then
    P5_NOTE="not measured: needs colmena-central at $CEN and PostgreSQL server binaries in $PG_BIN"
    return 0
  fi
  PG_DIR=$(mktemp -d /tmp/colmena-bench-pg.XXXXXX)
  [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$PG_DIR"
  local port=$(( 20000 + RANDOM % 20000 ))
  pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --no-locale > "$WORK/pg-initdb.log" 2>&1 \
    || die "initdb failed (see $WORK/pg-initdb.log)"
  pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/pg.log" -w -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR" start \
    > /dev/null || die "PostgreSQL did not start (see $PG_DIR/pg.log)"
  local runs=$(( (ROUNDS + 1) / 2 )) n r i urls pids eps
  echo "### P5 (the P4 push-load against N centrals over one PostgreSQL 15, default server settings; pushers dealt over the N URLs; a fresh database per run)" >> "$RAW"
  for n in 1 2; do
    eps=()
    for r in $(seq "$runs"); do
      "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres "p5_n${n}_r$r" || die "createdb failed"
      urls="" pids=()
      for i in $(seq "$n"); do
        start "central-p5-$n-$r-$i" "$CEN" --listen 127.0.0.1:0 --database "postgres://postgres@127.0.0.1:$port/p5_n${n}_r$r" --admin-token adm
        urls="${urls:+$urls,}http://$START_ADDR" pids+=("$START_PID")
      done
      log "P5: $n central(s), run $r: $urls"
      if "$BENCH" push-load --central "$urls" --token adm --branches "$P4_BRANCHES" --batch 500 \
           --events "$EVENTS" --concurrency "$P4_CONC" --json > "$WORK/p5.txt" 2> "$WORK/p5.err"; then
        eps+=("$(tail -1 "$WORK/p5.txt" | grep -o '"events_per_s":[0-9.e+]*' | cut -d: -f2)")
        head -1 "$WORK/p5.txt" | sed "s/^push-load:/p5-n$n-r$r:/" | tee -a "$RAW" >&2
      else
        cat "$WORK/p5.err" "$WORK/p5.txt" >> "$RAW"
        [ "$QUICK" = 1 ] && { cat "$WORK/p5.txt" "$WORK/p5.err" >&2; die "P5 push-load failed"; }
        P5_NOTE="${P5_NOTE:+$P5_NOTE; }push-load failed with $n central(s): $(tail -2 "$WORK/p5.txt" "$WORK/p5.err" | tr '\n' ' ')"
      fi
      for i in "${pids[@]}"; do stop "$i"; done
    done
    if [ "${#eps[@]}" -gt 0 ]; then
      printf -v "P5_$n" '%s' "$(fmt0 "$(median "${eps[@]}")")"
      printf -v "P5_RUNS_$n" '%s' "$(stats round "${eps[@]}")"
    fi
  done
  pg_stop
  P5_RATIO=$(ratio "$P5_2" "$P5_1")
  P5_NOTE="1 instance $P5_1 events/s (runs: ${P5_RUNS_1:-none}), 2 instances $P5_2 events/s (runs: ${P5_RUNS_2:-none}), ×$P5_RATIO; $P4_CONC pushers, central pool 16 connections per instance, all on the same 2 cores as PostgreSQL${P5_NOTE:+; $P5_NOTE}"
  log "P5: $P5_NOTE"
}

# ------------------------------------------------------------------ P14 (sales reports)
# Loads REPORT_SALES sales from P4_BRANCHES branches, spread evenly over the last
# REPORT_DAYS days, through POST /sync/push (push-load --sold-from, in pieces of at most
# 2,000,000 events so the generator's prebuilt bodies fit in memory), then measures
# GET /reports/sales?group_by=branch and group_by=day over those days (report-load, one
# request at a time, America/Lima) on SQLite and on PostgreSQL. Then the P4 load against a
# fresh central with rollups and one with --skip-report-rollups (the hidden baseline flag),
# alternating, on each store: the ratio is what keeping the rollups costs ingest.
P14_NOTE="" P14_ROWS=""
p14_load() {  # p14_load URL : fills the store behind URL
  local per=$(( REPORT_SALES / P4_BRANCHES )) piece start=1 now_s from_s step
  now_s=$(date -u +%s)
  from_s=$(( (now_s / 86400 - REPORT_DAYS) * 86400 ))
  step=$(( REPORT_DAYS * 86400000 / (per > 0 ? per : 1) ))
  piece=$(( 2000000 / P4_BRANCHES )); [ "$piece" -ge 1 ] || piece=1
  P14_FROM=$(date -u -d "@$from_s" +%F) P14_TO=$(date -u -d "@$(( (now_s / 86400) * 86400 ))" +%F)
  local t0=$SECONDS
  while [ "$start" -le "$per" ]; do
    local n=$(( per - start + 1 )); [ "$n" -le "$piece" ] || n=$piece
    "$BENCH" push-load --central "$1" --token adm --branches "$P4_BRANCHES" --batch 500 \
      --events $(( n * P4_BRANCHES )) --concurrency "$P4_CONC" --start-seq "$start" \
      --sold-from "$(date -u -d "@$from_s" +%FT%TZ)" --sold-step-ms "$step" --json > "$WORK/p14-load.txt" 2> "$WORK/p14-load.err" \
      || { cat "$WORK/p14-load.txt" "$WORK/p14-load.err" >&2; die "P14 load failed"; }
    head -1 "$WORK/p14-load.txt" | sed "s/^push-load:/p14-load-from-seq-$start:/" >> "$RAW"
    start=$(( start + n ))
  done
  P14_LOAD_S=$(( SECONDS - t0 ))
}
p14_measure() {  # p14_measure STORE URL
  "$BENCH" report-load --central "$2" --token adm --from "$P14_FROM" --to "$P14_TO" --tz America/Lima \
    --group-by branch,day --requests "$REPORT_REQUESTS" --json > "$WORK/p14-$1.txt" 2> "$WORK/p14-$1.err" \
    || { cat "$WORK/p14-$1.txt" "$WORK/p14-$1.err" >&2; die "P14 report-load failed on $1"; }
  grep '^report-load' "$WORK/p14-$1.txt" | sed "s/^report-load:/p14-$1:/" | tee -a "$RAW" >&2
  local g p50 p99
  for g in branch day; do
    p50=$(grep "\"group_by\":\"$g\"" "$WORK/p14-$1.txt" | grep -o '"p50_ms":[0-9.e+-]*' | cut -d: -f2)
    p99=$(grep "\"group_by\":\"$g\"" "$WORK/p14-$1.txt" | grep -o '"p99_ms":[0-9.e+-]*' | cut -d: -f2)
    P14_ROWS="${P14_ROWS}| P14 | \`GET /reports/sales?group_by=$g\` over $REPORT_DAYS days, $REPORT_SALES sales from $P4_BRANCHES branches, $1 (loaded in ${P14_LOAD_S}s) | p50 $(printf %.1f "$p50") ms / **p99 $(printf %.1f "$p99") ms** | p99 ≤ 50 ms | $(met "$p99" le 50) |
"
  done
}
p14_ingest() {  # p14_ingest STORE DBARG... : P14_IRATIO_<STORE>
  local store=$1 r flag eps with=() without=() db
  for r in $(seq "$(( (ROUNDS + 1) / 2 ))"); do
    for flag in "" --skip-report-rollups; do
      if [ "$store" = sqlite ]; then
        mkdir -p "$WORK/p14i-$r$flag"; db="$WORK/p14i-$r$flag/c.db"
      else
        local name="p14i_${r}${flag:+_skip}"; name=${name//-/_}
        "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$name" || die "createdb failed"
        db="postgres://postgres@127.0.0.1:$PG_PORT/$name"
      fi
      # shellcheck disable=SC2086
      start "central-p14i" "$CEN" --listen 127.0.0.1:0 --database "$db" --admin-token adm $flag
      "$BENCH" push-load --central "http://$START_ADDR" --token adm --branches "$P4_BRANCHES" --batch 500 \
        --events "$EVENTS" --concurrency "$P4_CONC" --json > "$WORK/p14i.txt" 2> "$WORK/p14i.err" \
        || { cat "$WORK/p14i.txt" "$WORK/p14i.err" >&2; die "P14 ingest push-load failed"; }
      eps=$(tail -1 "$WORK/p14i.txt" | grep -o '"events_per_s":[0-9.e+]*' | cut -d: -f2)
      head -1 "$WORK/p14i.txt" | sed "s/^push-load:/p14-ingest-$store-r$r${flag:+-skip}:/" | tee -a "$RAW" >&2
      if [ -z "$flag" ]; then with+=("$eps"); else without+=("$eps"); fi
      stop "$START_PID"
    done
  done
  local w wo
  w=$(fmt0 "$(median "${with[@]}")") wo=$(fmt0 "$(median "${without[@]}")")
  local rt; rt=$(ratio "$w" "$wo")
  P14_ROWS="${P14_ROWS}| P14′ | P4 ingest on $store with the report rollups ÷ without (\`--skip-report-rollups\`), alternating fresh centrals | **×$rt** — $w vs $wo events/s (medians of ${#with[@]} run(s) each) | ≥ 0.9 | $(met "$rt" ge 0.9) |
"
}
run_p14() {
  if ! central_works; then P14_NOTE="not measured: no working colmena-central at $CEN"; return 0; fi
  echo "### P14 (sales reports: load $REPORT_SALES sales over $REPORT_DAYS days from $P4_BRANCHES branches, then report-load; ingest with/without rollups)" >> "$RAW"
  mkdir -p "$WORK/p14-sqlite"
  start central-p14 "$CEN" --listen 127.0.0.1:0 --database "$WORK/p14-sqlite/c.db" --admin-token adm --timezone America/Lima
  log "P14: loading $REPORT_SALES sales into SQLite"
  p14_load "http://$START_ADDR"
  p14_measure sqlite "http://$START_ADDR"
  stop "$START_PID"
  rm -rf "$WORK/p14-sqlite"
  p14_ingest sqlite
  if [ -x "$PG_BIN/initdb" ]; then
    PG_DIR=$(mktemp -d /tmp/colmena-bench-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$PG_DIR"
    PG_PORT=$(( 20000 + RANDOM % 20000 ))
    pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --no-locale > "$WORK/pg-initdb.log" 2>&1 || die "initdb failed"
    pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/pg.log" -w -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR" start > /dev/null \
      || die "PostgreSQL did not start (see $PG_DIR/pg.log)"
    "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres p14 || die "createdb failed"
    start central-p14pg "$CEN" --listen 127.0.0.1:0 --database "postgres://postgres@127.0.0.1:$PG_PORT/p14" --admin-token adm --timezone America/Lima
    log "P14: loading $REPORT_SALES sales into PostgreSQL"
    p14_load "http://$START_ADDR"
    p14_measure postgresql "http://$START_ADDR"
    stop "$START_PID"
    p14_ingest postgresql
    pg_stop
  else
    P14_NOTE="PostgreSQL not measured: no server binaries in $PG_BIN"
  fi
}
if [ "$ONLY_P14" = 1 ]; then
  run_p14
  printf '%s' "$P14_ROWS"
  [ -z "$P14_NOTE" ] || echo "$P14_NOTE"
  cat "$RAW"
  exit 0
fi
if [ "$ONLY_P5" = 1 ]; then
  run_p5
  P5_BEST=$(stats max "$P5_1" "$P5_2")
  echo "| P5 | central ingest on PostgreSQL, $P4_BRANCHES simulated branches, batches of 500, 1 and 2 central instances | **$P5_1 / $P5_2 events/s** — $P5_NOTE | ≥ 40,000 events/s | $(met "$P5_BEST" ge 40000) |"
  cat "$RAW"
  exit 0
fi

# ------------------------------------------------------------------ P1
log "P1: /sell baseline vs branch, $ROUNDS alternating rounds of wrk -t2 -c64 -d${DUR}s"
echo "### P1 runs (wrk -t2 -c64 -d${DUR}s --latency, POST /sell {\"product_id\":\"P1\",\"quantity\":1})" >> "$RAW"
B_RPS=() B_P50=() B_P99=() B_CPU=() B_GEN=() S_RPS=() S_P50=() S_P99=() S_CPU=() S_GEN=() T_RPS=() T_CPU=() T_RR=()
F_RPS=() F_CPU=() F_RR=() SF_RR=()
SHM=""
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] && [ -w /dev/shm ]; then SHM=$(mktemp -d /dev/shm/colmena-bench.XXXXXX); fi
for r in $(seq "$ROUNDS"); do
  # shellcheck disable=SC2046
  start baseline $(baseline_cmd)
  wrk_run "baseline-r$r" "$START_ADDR" "$START_PID"; stop "$START_PID"
  B_RPS+=("$WRK_RPS") B_P50+=("$WRK_P50") B_P99+=("$WRK_P99") B_CPU+=("$WRK_CPU_US") B_GEN+=("$WRK_GEN_US")
  # shellcheck disable=SC2046
  start branch $(branch_cmd "$WORK/p1-r$r" http://127.0.0.1:1 "$WORK/catalog.json")
  wrk_run "branch-r$r" "$START_ADDR" "$START_PID"; stop "$START_PID"
  S_RPS+=("$WRK_RPS") S_P50+=("$WRK_P50") S_P99+=("$WRK_P99") S_CPU+=("$WRK_CPU_US") S_GEN+=("$WRK_GEN_US")
  # Diagnostic, not the figure: the same branch with its store in RAM (tmpfs, where an
  # fsync costs nothing), to show how much of the gap is the disk's.
  if [ -n "$SHM" ]; then
    # shellcheck disable=SC2046
    start branch-tmpfs $(branch_cmd "$SHM/p1-r$r" http://127.0.0.1:1 "$WORK/catalog.json")
    wrk_run "branch-tmpfs-r$r" "$START_ADDR" "$START_PID"; stop "$START_PID"; rm -rf "${SHM:?}/p1-r$r"
    T_RPS+=("$WRK_RPS") T_CPU+=("$WRK_CPU_US")
    T_RR+=("$(ratio "$WRK_RPS" "${B_RPS[$((r - 1))]}")")
  fi
  # Diagnostic, not the figure: the durable floor, i.e. the baseline answering only after an
  # fdatasync of a plain log on the branch's disk (colmena-bench baseline --durable-dir). Its
  # ratio to the baseline estimates the most P1 this disk allows a design that fsyncs first.
  # shellcheck disable=SC2046
  start floor $(baseline_cmd --durable-dir "$WORK/floor-r$r")
  wrk_run "floor-r$r" "$START_ADDR" "$START_PID"; stop "$START_PID"; rm -rf "$WORK/floor-r$r"
  F_RPS+=("$WRK_RPS") F_CPU+=("$WRK_CPU_US")
  F_RR+=("$(ratio "$WRK_RPS" "${B_RPS[$((r - 1))]}")") SF_RR+=("$(ratio "${S_RPS[$((r - 1))]}" "$WRK_RPS")")
done
P1_B=$(fmt0 "$(median "${B_RPS[@]}")") P1_S=$(fmt0 "$(median "${S_RPS[@]}")")
# The figure is the median of the per-round ratios: each branch run is paired with the
# baseline run just before it, so slow drifts of the machine's load cancel within a pair.
P1_RR=()
for i in "${!S_RPS[@]}"; do P1_RR+=("$(ratio "${S_RPS[$i]}" "${B_RPS[$i]}")"); done
P1_R=$(median --decimals 2 "${P1_RR[@]}")
echo "P1 per-round ratios: ${P1_RR[*]} -> median $P1_R (ratio of the medians: $(ratio "$P1_S" "$P1_B"))" | tee -a "$RAW" >&2
P1_BCPU=$(median "${B_CPU[@]}") P1_SCPU=$(median "${S_CPU[@]}") P1_BGEN=$(median "${B_GEN[@]}") P1_SGEN=$(median "${S_GEN[@]}")
P1_BP50=$(median "${B_P50[@]}") P1_BP99=$(median "${B_P99[@]}") P1_SP50=$(median "${S_P50[@]}") P1_SP99=$(median "${S_P99[@]}")
log "P1: branch $P1_S / baseline $P1_B = $P1_R"
if [ -n "$SHM" ]; then
  rmdir "$SHM" 2>/dev/null || true
  P1_TR=$(median --decimals 2 "${T_RR[@]}")
  P1_TNOTE="**$P1_TR** of the baseline (per-round ratios ${T_RR[*]}; median $(fmt0 "$(median "${T_RPS[@]}")") req/s, server CPU $(median "${T_CPU[@]}") µs per request) — the same code with its store on tmpfs, where an fsync is free: the part of the gap the disk does not explain"
  echo "P1 diagnostic, store on tmpfs: per-round ratios ${T_RR[*]} -> median $P1_TR" | tee -a "$RAW" >&2
else
  P1_TNOTE="not measured (no writable tmpfs at /dev/shm)"
fi
P1_FR=$(median --decimals 2 "${F_RR[@]}") P1_SFR=$(median --decimals 2 "${SF_RR[@]}")
P1_FNOTE="**$P1_FR** of the baseline (per-round ratios ${F_RR[*]}; median $(fmt0 "$(median "${F_RPS[@]}")") req/s, server CPU $(median "${F_CPU[@]}") µs per request); the branch reached **$P1_SFR** of this floor (per-round ratios ${SF_RR[*]})"
echo "P1 diagnostic, durable floor: per-round ratios ${F_RR[*]} -> median $P1_FR; branch ÷ floor ${SF_RR[*]} -> median $P1_SFR" | tee -a "$RAW" >&2

# ------------------------------------------------------------------ P2 (oha, open loop)
P2_P99=n/a P2_NOTE=""
oha_run() {  # oha_run LABEL ADDR RATE CONNS
  "$OHA" -z "${DUR}s" -c "$4" -q "$3" --latency-correction --no-tui -m POST \
    -H "Authorization: Bearer t" -T application/json -d '{"product_id":"P1","quantity":1}' \
    "http://$2/sell" > "$WORK/oha-$1.txt" 2>&1 || true
  vars OHA_ oha "$WORK/oha-$1.txt"  # OHA_P50, OHA_P99 (ms), OHA_RPS, OHA_OK (201s), OHA_OTHER_LINES
  echo "$1: oha -z ${DUR}s -c $4 -q $3 --latency-correction: ${OHA_RPS:-?} req/s, p50 ${OHA_P50:-?} ms, p99 ${OHA_P99:-?} ms, ${OHA_OK:-0} × 201, $OHA_OTHER_LINES non-201/error lines" | tee -a "$RAW" >&2
}
# The disk's fsync latency, where the branch's store lives: a durable /sell waits for its
# group commit's fsync, so this p99 is a floor under P2's that code cannot lower.
FSYNC_LINE=$("$BENCH" fsync-probe --dir "$WORK" --count "$(if [ "$QUICK" = 1 ]; then echo 200; else echo 3000; fi)" 2>&1 || true)
echo "### disk: $FSYNC_LINE (8 KiB write + fdatasync in $WORK)" >> "$RAW"
FSYNC_P50=$(echo "$FSYNC_LINE" | sed -n 's/.* p50=\([0-9.]*\).*/\1/p')
FSYNC_P99=$(echo "$FSYNC_LINE" | sed -n 's/.* p99=\([0-9.]*\).*/\1/p')
FSYNC_NOTE="the disk's own fsync in this run: p50 ${FSYNC_P50:-?} ms, p99 ${FSYNC_P99:-?} ms (colmena-bench fsync-probe), a floor under any durable /sell p99"
if [ -n "$OHA" ]; then
  RATE=$(( P1_S / 2 ))  # P1_S is a whole number of req/s
  log "P2: oha open loop at $RATE req/s (half the branch's P1 median), latency-corrected; baseline at the same rate for reference"
  echo "### P2 runs" >> "$RAW"
  B2=() S2=() F2=() L2=() L2B=()
  for r in $(seq "$(( (ROUNDS + 1) / 2 ))"); do
    # shellcheck disable=SC2046
    start baseline $(baseline_cmd)
    oha_run "p2-baseline-r$r" "$START_ADDR" "$RATE" 64; stop "$START_PID"; [ -n "$OHA_P99" ] && B2+=("$OHA_P99")
    # The durable floor at the same rate, as plain group commit (one fsync in flight) and
    # with two fsyncs in flight (a batch need not wait for the previous batch's fsync).
    # shellcheck disable=SC2046
    start floor $(baseline_cmd --durable-dir "$WORK/p2-floor-r$r")
    oha_run "p2-floor-r$r" "$START_ADDR" "$RATE" 64; stop "$START_PID"; rm -rf "$WORK/p2-floor-r$r"; [ -n "$OHA_P99" ] && L2+=("$OHA_P99")
    # shellcheck disable=SC2046
    start floor2 $(baseline_cmd --durable-dir "$WORK/p2-floor2-r$r" --syncers 2)
    oha_run "p2-floor2-r$r" "$START_ADDR" "$RATE" 64; stop "$START_PID"; rm -rf "$WORK/p2-floor2-r$r"; [ -n "$OHA_P99" ] && L2B+=("$OHA_P99")
    # shellcheck disable=SC2046
    start branch $(branch_cmd "$WORK/p2-r$r" http://127.0.0.1:1 "$WORK/catalog.json")
    oha_run "p2-branch-r$r" "$START_ADDR" "$RATE" 64; [ -n "$OHA_P99" ] && S2+=("$OHA_P99")
    # The fsyncs the branch itself made under this load (its own histogram, warm-up included).
    curl -s "http://$START_ADDR/metrics" > "$WORK/p2-metrics-r$r.txt" || true
    stop "$START_PID"
    # p99 in ms, interpolated inside its bucket: BRANCH_FSYNC_QUANTILE_MS (n/a, inf or a number), BRANCH_FSYNC_COUNT
    vars BRANCH_FSYNC_ hist "$WORK/p2-metrics-r$r.txt" colmena_outbox_fsync_duration_seconds --decimals 3
    if [ "$BRANCH_FSYNC_COUNT" -gt 0 ] && [ "$BRANCH_FSYNC_QUANTILE_MS" != n/a ] && [ "$BRANCH_FSYNC_QUANTILE_MS" != inf ]; then
      F2+=("$BRANCH_FSYNC_QUANTILE_MS")
      echo "p2-branch-r$r: the branch's own fdatasyncs during the run: $BRANCH_FSYNC_COUNT, p99 ${F2[-1]} ms (colmena_outbox_fsync_duration_seconds, interpolated inside its bucket)" | tee -a "$RAW" >&2
    fi
    [ "${OHA_OK:-0}" -gt 0 ] || die "P2: oha got no 201 from the branch (see $WORK/oha-p2-branch-r$r.txt)"
  done
  if [ "${#S2[@]}" -gt 0 ]; then
    P2_P99=$(median "${S2[@]}")
    P2_NOTE="branch at $RATE req/s (½ of its P1 median), median of ${#S2[@]} run(s); the in-memory baseline at the same rate: p99 $(median "${B2[@]:-0}") ms; the durable floor (the baseline answering after a group-committed fdatasync of a plain log, see P1 floor) at the same rate: p99 $(median "${L2[@]:-0}") ms with one fsync in flight, $(median "${L2B[@]:-0}") ms with two; $FSYNC_NOTE; the branch's own WAL fdatasyncs under this load: p99 $(median "${F2[@]:-0}") ms (its colmena_outbox_fsync_duration_seconds histogram)"
  else
    P2_NOTE="oha ran but its output could not be parsed (see raw)"
  fi
else
  P2_NOTE="not measured: needs an open-loop generator with coordinated-omission correction. wrk2 is not packaged in Debian; oha is not installed on this machine (re-run with --install-oha when nothing else is compiling: a ~4 min build on 2 cores). wrk's closed-loop p99 under saturation is in P1."
fi

# ------------------------------------------------------------------ P3
P3_R=n/a P3_NOTE="" P3_UP=n/a P3_DOWN=n/a
if central_works; then
  log "P3: branch /sell with central down vs up, $ROUNDS alternating rounds"
  echo "### P3 runs (same wrk settings, the sale spread over P1..P100; 'up' = a live colmena-central receiving the relay's pushes on the same 2 cores)" >> "$RAW"
  DOWN=() UP=() P3_MAXLAG=0
  for r in $(seq "$ROUNDS"); do
    # shellcheck disable=SC2046
    start branch $(branch_cmd "$WORK/p3d-r$r" http://127.0.0.1:1 "$WORK/catalog-sync.json")
    wrk_run "central-down-r$r" "$START_ADDR" "$START_PID" "$WORK/sell-many.lua"; stop "$START_PID"; DOWN+=("$WRK_RPS")
    mkdir -p "$WORK/p3c-r$r"
    start central "$CEN" --listen 127.0.0.1:0 --database "$WORK/p3c-r$r/c.db" --admin-token adm --branch-token CUS=bench-branch-token
    CPID=$START_PID CADDR=$START_ADDR
    # shellcheck disable=SC2046
    start branch $(branch_cmd "$WORK/p3u-r$r" "http://$CADDR" "$WORK/catalog-sync.json" --central-token bench-branch-token)
    BPID=$START_PID BADDR=$START_ADDR
    wrk_run "central-up-r$r" "$BADDR" "$BPID" "$WORK/sell-many.lua"; UP+=("$WRK_RPS")
    LAST=$(curl -s -H 'Authorization: Bearer t' "http://$BADDR/status" | grep -o '"last_seq":[0-9]*' | cut -d: -f2 || true)
    APPLIED=$(curl -s -H 'Authorization: Bearer adm' "http://$CADDR/branches" | grep -o '"branch_id":"CUS","applied_through":[0-9]*' | grep -o '[0-9]*$' || true)
    LAG=$(( ${LAST:-0} - ${APPLIED:-0} )); [ "$LAG" -gt "$P3_MAXLAG" ] && P3_MAXLAG=$LAG
    echo "central-up-r$r: at the end of the run branch last_seq=${LAST:-?}, central applied_through=${APPLIED:-0} (relay backlog $LAG events)" | tee -a "$RAW" >&2
    stop "$BPID"; stop "$CPID"
  done
  P3_DOWN=$(fmt0 "$(median "${DOWN[@]}")") P3_UP=$(fmt0 "$(median "${UP[@]}")")
  P3_RR=()
  for i in "${!DOWN[@]}"; do P3_RR+=("$(ratio "${DOWN[$i]}" "${UP[$i]}")"); done
  P3_R=$(median --decimals 2 "${P3_RR[@]}")
  echo "P3 per-round ratios: ${P3_RR[*]} -> median $P3_R" | tee -a "$RAW" >&2
  P3_NOTE="median of the per-round ratios ${P3_RR[*]}; medians: down $P3_DOWN req/s, up $P3_UP req/s; relay backlog at the end of the 'up' runs: at most $P3_MAXLAG events"
else
  P3_NOTE="not measured: no working colmena-central binary at $CEN when this ran"
fi

# ------------------------------------------------------------------ P4 (+ central RSS for P9)
P4_EPS=n/a P4_NOTE="" P9_CENTRAL=""
if central_works; then
  P4_RUNS=$(( (ROUNDS + 1) / 2 ))
  log "P4: central ingest, $P4_BRANCHES branches, batches of 500, $EVENTS events, $P4_CONC pushers, $P4_RUNS run(s)"
  echo "### P4 (colmena-bench push-load --branches $P4_BRANCHES --batch 500 --events $EVENTS --concurrency $P4_CONC; a fresh central on SQLite per run)" >> "$RAW"
  EPS=() P4_FAILED=""
  for r in $(seq "$P4_RUNS"); do
    mkdir -p "$WORK/p4-r$r"
    start central "$CEN" --listen 127.0.0.1:0 --database "$WORK/p4-r$r/c.db" --admin-token adm
    CPID=$START_PID
    if "$BENCH" push-load --central "http://$START_ADDR" --token adm --branches "$P4_BRANCHES" --batch 500 \
         --events "$EVENTS" --concurrency "$P4_CONC" --json > "$WORK/p4.txt" 2> "$WORK/p4.err"; then
      EPS+=("$(tail -1 "$WORK/p4.txt" | grep -o '"events_per_s":[0-9.e+]*' | cut -d: -f2)")
      head -1 "$WORK/p4.txt" | sed "s/^push-load:/p4-r$r:/" | tee -a "$RAW" >&2
    else
      P4_FAILED="push-load failed: $(tail -2 "$WORK/p4.txt" "$WORK/p4.err" | tr '\n' ' ')"
      cat "$WORK/p4.err" "$WORK/p4.txt" >> "$RAW"
      [ "$QUICK" = 1 ] && { cat "$WORK/p4.txt" "$WORK/p4.err" >&2; die "P4 push-load failed"; }
    fi
    if [ "$r" = "$P4_RUNS" ]; then
      # Right after the storm, then at rest: the services hand freed memory back every 5 s.
      C_AFTER=$(rss_note "$CPID")
      sleep 6
      P9_CENTRAL="central after P4 ($P4_BRANCHES branches, $EVENTS events in SQLite): RSS $C_AFTER right after the last push, $(rss_note "$CPID") 6 s later at rest, peak $(peak_mib "$CPID") MiB"
    fi
    stop "$CPID"
  done
  echo "$P9_CENTRAL" >> "$RAW"
  if [ "${#EPS[@]}" -gt 0 ]; then
    P4_EPS=$(fmt0 "$(median "${EPS[@]}")")
    P4_NOTE="median of ${#EPS[@]} run(s) ($(stats round "${EPS[@]}") events/s), $P4_CONC concurrent pushers; push latencies in raw${P4_FAILED:+; $P4_FAILED}"
  else
    P4_NOTE=$P4_FAILED
  fi
  log "P4: $P4_EPS events/s"
else
  P4_NOTE="pending: no working colmena-central binary at $CEN when this ran (the harness is ready: colmena-bench push-load)"
fi

run_p5
run_p14

# ------------------------------------------------------------------ P7 (oha at 1,000 sales/s, central up)
P7_P99=n/a P7_NOTE=""
if [ -n "$OHA" ] && central_works; then
  log "P7: sync latency at 1,000 sales/s (oha open loop), central up"
  mkdir -p "$WORK/p7c"
  start central "$CEN" --listen 127.0.0.1:0 --database "$WORK/p7c/c.db" --admin-token adm --branch-token CUS=bench-branch-token
  CPID=$START_PID CADDR=$START_ADDR
  # shellcheck disable=SC2046
  start branch $(branch_cmd "$WORK/p7" "http://$CADDR" "$WORK/catalog-sync.json" --central-token bench-branch-token)
  BPID=$START_PID BADDR=$START_ADDR
  echo "### P7 (branch with a live central, oha at 1,000 sales/s)" >> "$RAW"
  oha_run p7 "$BADDR" 1000 16
  sleep 1
  curl -s "http://$BADDR/metrics" > "$WORK/p7-metrics.txt" || true
  stop "$BPID"; stop "$CPID"
  # P7H_QUANTILE_MS (the p99, interpolated inside its bucket), P7H_SHARE_PCT (≤ 50 ms), P7H_COUNT
  vars P7H_ hist "$WORK/p7-metrics.txt" colmena_sync_latency_seconds --bound 0.05 --decimals 1
  if [ "$P7H_QUANTILE_MS" != n/a ] && [ "$P7H_QUANTILE_MS" != inf ]; then
    P7_P99=$P7H_QUANTILE_MS
    P7_NOTE="from the branch's colmena_sync_latency_seconds histogram ($P7H_COUNT events; p99 interpolated inside its bucket; $P7H_SHARE_PCT % of events ≤ 50 ms)"
  else
    P7_NOTE="the histogram had no usable data ($P7H_COUNT events) — see raw"
  fi
  grep '^colmena_sync_latency_seconds' "$WORK/p7-metrics.txt" >> "$RAW" || true
else
  P7_NOTE="not measured: needs oha (see P2) and a working colmena-central"
fi

# ------------------------------------------------------------------ P10 (a flood of logins vs /sell)
# 200 clients logging in again and again (argon2id verifications, bounded at the branch)
# while /sell runs at a fixed rate, open loop: /sell's p99 during the storm ÷ idle.
P10_R=n/a P10_NOTE="not measured: needs a working colmena-central"
if central_works; then
  log "P10: /sell p99 during a storm of logins"
  mkdir -p "$WORK/p10c"
  start central "$CEN" --listen 127.0.0.1:0 --database "$WORK/p10c/c.db" --admin-token adm --branch-token CUS=bench-branch-token
  CPID=$START_PID CADDR=$START_ADDR
  curl -sf -X PUT "http://$CADDR/users/bench-ana" -H 'Authorization: Bearer adm' -H 'Content-Type: application/json' \
    -d '{"name":"Ana","role":"cashier","branches":["CUS"],"pin":"4821"}' > /dev/null || die "P10: PUT /users failed"
  # shellcheck disable=SC2046
  start branch $(branch_cmd "$WORK/p10" "http://$CADDR" "$WORK/catalog-sync.json" --central-token bench-branch-token --pull-interval 200ms)
  BPID=$START_PID BADDR=$START_ADDR
  for _ in $(seq 100); do
    curl -sf -X POST "http://$BADDR/login" -H 'Content-Type: application/json' -d '{"user_id":"bench-ana","pin":"4821"}' > /dev/null && break
    sleep 0.1
  done
  P10_LINE=$("$BENCH" login-storm --branch "http://$BADDR" --pos-token t --user bench-ana --pin 4821 --product P1 \
    --logins "$(if [ "$QUICK" = 1 ]; then echo 20; else echo 200; fi)" --rate 200 --seconds "$(if [ "$QUICK" = 1 ]; then echo 1; else echo 10; fi)" 2>&1 || true)
  stop "$BPID"; stop "$CPID"
  echo "### P10 (login storm)" >> "$RAW"; echo "$P10_LINE" >> "$RAW"
  P10_R=$(echo "$P10_LINE" | sed -n 's/.*p99 ratio \([0-9.]*\).*/\1/p'); P10_R=${P10_R:-n/a}
  P10_NOTE=$(echo "$P10_LINE" | sed -n 's/^login-storm: //p'); P10_NOTE=${P10_NOTE:-"no answer (see raw)"}
  [ "$QUICK" = 1 ] && [ "$P10_R" = n/a ] && die "P10 login-storm failed: $P10_LINE"
fi

# ------------------------------------------------------------------ P11 (tenders and a shift on /sell)
# One branch, a cashier's shift open on it: rounds alternate plain /sell and /sell naming
# the shift with a cash payment that gets change (the heaviest tender: it moves the shift's
# figures in the sale's transaction). Ratio: tendered ÷ plain, per round. P11 is measured
# with central stopped, like P1 (the branch's own cost); P11' first, with central up on the
# same 2 cores (central's cost of the richer events included).
P11_R=n/a P11_NOTE="not measured: needs a working colmena-central" P11_UP=n/a P11_UP_NOTE=""
if central_works; then
  log "P11: /sell with a shift and payments vs plain /sell, $ROUNDS alternating rounds"
  mkdir -p "$WORK/p11c"
  start central "$CEN" --listen 127.0.0.1:0 --database "$WORK/p11c/c.db" --admin-token adm --branch-token CUS=bench-branch-token
  CPID=$START_PID CADDR=$START_ADDR
  curl -sf -X PUT "http://$CADDR/users/bench-ana" -H 'Authorization: Bearer adm' -H 'Content-Type: application/json' \
    -d '{"name":"Ana","role":"cashier","branches":["CUS"],"pin":"4821"}' > /dev/null || die "P11: PUT /users failed"
  # shellcheck disable=SC2046
  start branch $(branch_cmd "$WORK/p11" "http://$CADDR" "$WORK/catalog-sync.json" --central-token bench-branch-token --pull-interval 200ms)
  BPID=$START_PID BADDR=$START_ADDR
  ANA=""
  for _ in $(seq 100); do
    ANA=$(curl -sf -X POST "http://$BADDR/login" -H 'Content-Type: application/json' -d '{"user_id":"bench-ana","pin":"4821"}' \
      | sed -n 's/.*"token":"\([^"]*\)".*/\1/p') && [ -n "$ANA" ] && break
    sleep 0.1
  done
  SHIFT=$(curl -sf -X POST "http://$BADDR/shifts" -H "Authorization: Bearer $ANA" -H 'Content-Type: application/json' \
    -d '{"till_id":"T1","opening_float_cents":10000}' | sed -n 's/.*"shift_id":"\([^"]*\)".*/\1/p')
  [ -n "$SHIFT" ] || die "P11: could not open a shift"
  cat > "$WORK/sell-tendered.lua" <<EOF
local i = 0
request = function()
  i = (i % 100) + 1
  return wrk.format("POST", "/sell", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer t"},
    '{"product_id":"P' .. i .. '","quantity":1,"shift_id":"$SHIFT","payments":[{"method":"cash","amount_cents":100000}]}')
end
EOF
  # p11_rounds LABEL: alternating plain/tendered rounds on the running branch; sets P11_RR,
  # PLAIN, TENDERED.
  p11_rounds() {
    PLAIN=() TENDERED=() P11_RR=()
    for r in $(seq "$ROUNDS"); do
      wrk_run "plain-$1-r$r" "$BADDR" "$BPID" "$WORK/sell-many.lua"; PLAIN+=("$WRK_RPS")
      wrk_run "tendered-$1-r$r" "$BADDR" "$BPID" "$WORK/sell-tendered.lua"; TENDERED+=("$WRK_RPS")
      P11_RR+=("$(ratio "$WRK_RPS" "${PLAIN[-1]}")")
    done
  }
  echo "### P11 runs (one branch, shift $SHIFT open; plain = sell-many.lua, tendered = the same sales with shift_id and a cash payment with change; first with central up, then with central stopped)" >> "$RAW"
  p11_rounds up
  P11_UP=$(median --decimals 2 "${P11_RR[@]}")
  P11_UP_NOTE="median of the per-round ratios ${P11_RR[*]}; medians: plain $(fmt0 "$(median "${PLAIN[@]}")") req/s, tendered $(fmt0 "$(median "${TENDERED[@]}")") req/s"
  stop "$CPID"
  p11_rounds down
  SALES_ON_SHIFT=$(curl -s -H "Authorization: Bearer $ANA" "http://$BADDR/shifts/$SHIFT" | grep -o '"sales_count":[0-9]*' | cut -d: -f2 || true)
  stop "$BPID"
  P11_R=$(median --decimals 2 "${P11_RR[@]}")
  echo "P11 per-round ratios, central down: ${P11_RR[*]} -> median $P11_R; central up: $P11_UP; the shift counted ${SALES_ON_SHIFT:-?} sales" | tee -a "$RAW" >&2
  P11_NOTE="median of the per-round ratios ${P11_RR[*]}; medians: plain $(fmt0 "$(median "${PLAIN[@]}")") req/s, tendered $(fmt0 "$(median "${TENDERED[@]}")") req/s; the shift counted ${SALES_ON_SHIFT:-?} sales"
  [ "$QUICK" = 1 ] && [ "$P11_R" = n/a ] && die "P11 failed"
fi

# ------------------------------------------------------------------ P8 + P6 + P9 (one big branch)
# One store: first boot with P9_PRODUCTS products (RSS idle), filled with PENDING_TARGET pending
# events while central is down (RSS under load), stopped, then restarted against a live
# central: time to 'listening' (P8) and until central has every event (P6).
log "P6/P8/P9: branch with $P9_PRODUCTS products and $PENDING_TARGET pending events"
catalog "$P9_PRODUCTS" 1000000 "$WORK/catalog-big.json"
last_seq_of() { curl -s -H 'Authorization: Bearer t' "http://$1/status" | grep -o '"last_seq":[0-9]*' | cut -d: -f2 || true; }
T0=$(date +%s.%N)
start branch "$SUC" --branch-id CUS --pos-token t --data-dir "$WORK/big" --catalog "$WORK/catalog-big.json" --central-url http://127.0.0.1:1 --listen 127.0.0.1:0 --startup-sync-timeout 1s
T1=$(date +%s.%N)
BPID=$START_PID BADDR=$START_ADDR
RSS_IDLE=$(rss_note "$BPID")
p12_p99() { echo "$P12_LINE" | sed -n 's/.*search p50=[0-9.]* p99=\([0-9.]*\).*/\1/p' | grep . || echo n/a; }
# P12: a till's search over the big catalog, one request at a time, against a lookup baseline.
P12_LINE=$("$BENCH" search-load --branch "http://$BADDR" --pos-token t --products "$P9_PRODUCTS" --requests "$P12_REQUESTS" 2>&1 | tail -1) || P12_LINE="search-load failed: $P12_LINE"
echo "$P12_LINE" | tee -a "$RAW" >&2
[ "$QUICK" = 1 ] && [ "$(p12_p99)" = n/a ] && die "P12 failed: $P12_LINE"
FILL0=$(date +%s)
while :; do
  LAST=$(last_seq_of "$BADDR"); LAST=${LAST:-0}
  [ "$LAST" -ge "$PENDING_TARGET" ] && break
  [ $(( $(date +%s) - FILL0 )) -gt "$FILL_CAP" ] && { log "fill stopped at $LAST events after ${FILL_CAP}s"; break; }
  wrk -t2 -c64 -d"${FILL_CHUNK}s" -s "$WORK/sell-many.lua" "http://$BADDR/sell" > "$WORK/fill.txt"
  if grep -q 'Non-2xx' "$WORK/fill.txt"; then die "fill: non-2xx answers (see $WORK/fill.txt)"; fi
done
FILL_S=$(( $(date +%s) - FILL0 ))
RSS_LOAD=$(rss_note "$BPID") HWM=$(peak_mib "$BPID")
echo "fill: $LAST pending events ($P9_PRODUCTS seed adjustments + sales over 100 products, central down) in ${FILL_S}s" | tee -a "$RAW" >&2
stop "$BPID"
FIRST_BOOT=$(stats diff "$T0" "$T1" --decimals 2)
P9_BRANCH="branch with $P9_PRODUCTS products: RSS $RSS_IDLE after first boot, $RSS_LOAD after selling up to $LAST pending events (peak $HWM MiB)"
P6_S=n/a P6_NOTE="" P8_S=n/a
if central_works; then
  mkdir -p "$WORK/bigc"
  start central "$CEN" --listen 127.0.0.1:0 --database "$WORK/bigc/c.db" --admin-token adm --branch-token CUS=bench-branch-token
  CPID=$START_PID CADDR=$START_ADDR
  T2=$(date +%s.%N)
  start branch "$SUC" --branch-id CUS --pos-token t --data-dir "$WORK/big" --central-url "http://$CADDR" --central-token bench-branch-token --listen 127.0.0.1:0 --startup-sync-timeout 1s
  T3=$(date +%s.%N)
  BPID=$START_PID
  APPLIED=0
  while :; do
    APPLIED=$(curl -s -H 'Authorization: Bearer adm' "http://$CADDR/branches" | grep -o '"branch_id":"CUS","applied_through":[0-9]*' | grep -o '[0-9]*$' || true)
    [ "${APPLIED:-0}" -ge "$LAST" ] && break
    if stats check "$(stats diff "$T2" "$(date +%s.%N)")" gt 300; then log "P6: central has ${APPLIED:-0}/$LAST after 300 s; giving up"; break; fi
    sleep 0.1
  done
  T4=$(date +%s.%N)
  RSS_DRAINED=$(rss_note "$BPID")
  stop "$BPID"; stop "$CPID"
  P8_S=$(stats diff "$T2" "$T3" --decimals 2)
  if [ "${APPLIED:-0}" -ge "$LAST" ]; then
    P6_S=$(stats diff "$T2" "$T4" --decimals 1)
    P6_NOTE="$LAST pending events, from the branch's restart against a live central until central's applied_through reached its last_seq ($(stats ratio "$LAST" "$(stats diff "$T2" "$T4")" --decimals 0) events/s end to end)"
  else
    P6_NOTE="central had ${APPLIED:-0} of $LAST events after 300 s"
  fi
  P8_NOTE="restart to 'listening' with $P9_PRODUCTS products and $LAST pending events, central up (first boot with seeding: ${FIRST_BOOT}s)"
  echo "P8: $P8_NOTE: ${P8_S}s; P6: ${P6_S}s for $LAST events; branch RSS after the drain $RSS_DRAINED" | tee -a "$RAW" >&2
  P9_BRANCH="$P9_BRANCH, $RSS_DRAINED after the drain"
else
  T2=$(date +%s.%N)
  start branch "$SUC" --branch-id CUS --pos-token t --data-dir "$WORK/big" --central-url http://127.0.0.1:1 --listen 127.0.0.1:0 --startup-sync-timeout 1s
  T3=$(date +%s.%N)
  stop "$START_PID"
  P8_S=$(stats diff "$T2" "$T3" --decimals 2)
  P8_NOTE="restart to 'listening' with $P9_PRODUCTS products and $LAST pending events, central down (first boot with seeding: ${FIRST_BOOT}s)"
  P6_NOTE="not measured: no working colmena-central binary"
  echo "P8: $P8_NOTE: ${P8_S}s" >> "$RAW"
fi
echo "$P9_BRANCH" >> "$RAW"

# ------------------------------------------------------------------ optional profile
PROFILE_NOTE=""
if [ "$PROFILE" = 1 ] && command -v perf >/dev/null 2>&1; then
  log "profile: perf record -F 499 -g on the branch under wrk"
  # shellcheck disable=SC2046
  start branch $(branch_cmd "$WORK/prof" http://127.0.0.1:1 "$WORK/catalog.json")
  wrk -t2 -c64 -d"$((DUR + 2))s" -s "$WORK/sell.lua" "http://$START_ADDR/sell" > /dev/null &
  WPID=$!
  sleep 1
  perf record -F 499 -g -o "$WORK/perf.data" -p "$START_PID" -- sleep "$DUR" 2> /dev/null || true
  wait "$WPID" || true
  stop "$START_PID"
  perf report -i "$WORK/perf.data" --no-children --sort comm,dso --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' > "$WORK/profile-threads.txt" || true
  perf report -i "$WORK/perf.data" --no-children --sort comm,dso,symbol --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | cut -c1-180 | head -60 > "$WORK/profile-self.txt" || true
  PROFILE_NOTE="perf profile of the branch under the P1 load (perf record -F 499 -g, ${DUR}s): by thread and kernel/user in $WORK/profile-threads.txt, top symbols in $WORK/profile-self.txt"
  KEEP_WORK=1
fi

# ------------------------------------------------------------------ P13 (the cashier's page)
# tests/e2e/cashier_page_bench.rs (an ignored test of the e2e binary, since it drives headless
# Chromium through chromedriver with fantoccini, a dev-dependency): page weight gzipped, time
# to interactive, scan-to-basket latency over P13_PRODUCTS products. Needs chromium and
# chromium-driver (Debian); without them P13 is reported as not measured.
P13_PRODUCTS=100000 P13_LOADS=20 P13_SCANS=200
[ "$QUICK" = 1 ] && P13_PRODUCTS=1000 P13_LOADS=3 P13_SCANS=10
P13_WEIGHT=n/a P13_TTI=n/a P13_SCAN=n/a P13_NOTE="not measured: chromium/chromedriver missing (apt-get install chromium chromium-driver)"
if [ -x /usr/bin/chromedriver ]; then
  log "P13: the cashier's page (weight, time to interactive, scan to basket over $P13_PRODUCTS products)"
  P13_OUT=$WORK/p13.txt
  if (cd "$ROOT" && COLMENA_PAGE_BENCH_PRODUCTS=$P13_PRODUCTS COLMENA_PAGE_BENCH_LOADS=$P13_LOADS \
      COLMENA_PAGE_BENCH_SCANS=$P13_SCANS cargo test -q --release --test e2e cashier_page_benchmark \
      -- --ignored --exact cashier_page_bench::cashier_page_benchmark --nocapture) > "$P13_OUT" 2>&1; then
    grep '^page-bench:' "$P13_OUT" | tee -a "$RAW" >&2
    P13_WEIGHT=$(sed -n 's/^page-bench: weight .*gzip_kb=\([0-9.]*\).*/\1/p' "$P13_OUT" | grep . || echo n/a)
    P13_TTI=$(sed -n 's/^page-bench: tti .*warm_p50_ms=\([0-9.]*\).*/\1/p' "$P13_OUT" | grep . || echo n/a)
    P13_COLD=$(sed -n 's/^page-bench: tti cold_ms=\([0-9.]*\).*/\1/p' "$P13_OUT" | grep . || echo n/a)
    P13_SCAN=$(sed -n 's/^page-bench: scan .*p95_ms=\([0-9.]*\).*/\1/p' "$P13_OUT" | grep . || echo n/a)
    P13_NOTE="$(grep '^page-bench:' "$P13_OUT" | sed 's/^page-bench: //' | paste -sd';' - | sed 's/;/; /g')"
  else
    P13_NOTE="the benchmark failed (see $P13_OUT)"
    KEEP_WORK=1
  fi
  [ "$QUICK" = 1 ] && [ "$P13_SCAN" = n/a ] && die "P13 failed: $(tail -20 "$P13_OUT")"
fi

# ------------------------------------------------------------------ BENCHMARKS.md
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
P1_MET=$(met "$P1_R" ge 0.70) P2_MET=$(met "$P2_P99" le 2) P3_MET=$(met "$P3_R" ge 0.95) P4_MET=$(met "$P4_EPS" ge 100000)
MODE="full"; [ "$QUICK" = 1 ] && MODE="QUICK SMOKE RUN (1 s per figure, tiny sizes: the numbers mean nothing, only that the harness works)"
# Hand-written analysis (between the markers) survives regeneration.
PRESERVED=$(stats analysis "$OUT")  # a placeholder block when $OUT has none (or does not exist)
{
cat <<EOF
# colmena benchmarks

Generated by \`scripts/bench.sh${ORIG_ARGS:+ $ORIG_ARGS}\` — mode: $MODE.
Reproduce with \`scripts/bench.sh\` (full, ~15 min) or \`scripts/bench.sh --quick\` (smoke, ~15 s after the build).

| | |
|---|---|
| date (UTC) | $STARTED |
| machine | $NPROC cores (\`nproc\`), $CPU; memory $MEM (\`free -g\`) |
| load average before / after | $LOAD_BEFORE / $LOAD_AFTER |
| code | git $GIT, $DIRTY uncommitted paths; $BUILD_NOTE |
| load generator | wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2) (Debian), \`wrk -t2 -c64 -d${DUR}s --latency\`, Lua script POSTing \`{"product_id":"P1","quantity":1}\` with \`Authorization: Bearer\` and \`Content-Type: application/json\`; ${WARMUP}s unrecorded warm-up before each run |

**Noise caveat.** These figures were taken on a *shared* 2-core VM: colleagues compile and run
tests on the same cores, and wrk itself runs on the same 2 cores as the server under test.
Absolute figures move by ±15 % from run to run on a quiet box, and by a factor of 2 while
neighbours run their test suites (P4 measured 75,669 and 173,275 events/s in two full runs
of 2026-11-23 with the same binaries); that is why each figure is a ratio against a baseline measured in the same run,
alternating baseline and subject ($ROUNDS round(s) each) and taking the median. Compare
ratios, not absolute numbers, across runs and machines. The VM host itself changes
between sessions: on 2026-12-02 the unchanged baseline cost 11.1 µs of CPU per request on an
Intel host and 26.4 µs on an AMD one two hours later, so the absolute goals (P4–P8) move
with the host.

## Figures

| # | figure | measured | goal | status |
|---|---|---|---|---|
| P1 | durable \`/sell\` throughput ÷ in-memory ceiling, same run | **$P1_R** (median of the per-round ratios ${P1_RR[*]}; medians: branch $P1_S req/s, baseline $P1_B req/s) | ≥ 0.70 | $P1_MET |
| P1 | latency at saturation (closed loop, 64 connections) | branch p50 $P1_SP50 ms / p99 $P1_SP99 ms; baseline p50 $P1_BP50 ms / p99 $P1_BP99 ms | — | report |
| P1″ | diagnostic: the branch with its store on tmpfs ÷ baseline, same rounds | $P1_TNOTE | — | report |
| P1 floor | diagnostic: the durable floor ÷ baseline, same rounds — the cheapest durable \`/sell\` we could write, on this disk: an estimate of the most P1 a design that answers after an fsync can reach here | $P1_FNOTE | — | report |
| P1′ | server CPU per request (utime+stime ÷ requests; far less noisy than req/s) | branch $P1_SCPU µs, baseline $P1_BCPU µs: ×$(ratio "$P1_SCPU" "$P1_BCPU") (wrk itself: $P1_SGEN / $P1_BGEN µs per request, on the same 2 cores) | — | report |
| P2 | \`/sell\` p99 at half the max rate, open loop, CO-corrected | $P2_P99 ms — $P2_NOTE | ≤ 2 ms | $P2_MET |
| P3 | \`/sell\` throughput central down ÷ central up | **$P3_R** — $P3_NOTE. On one 2-core box "up" also pays for central and the relay's pushes, so > 1 is expected; the point is that "down" is not slower | ≥ 0.95 | $P3_MET |
| P4 | central ingest, $P4_BRANCHES simulated branches, batches of 500, SQLite | **$P4_EPS events/s** — $P4_NOTE | ≥ 100,000 events/s | $P4_MET |
| P5 | central ingest on PostgreSQL, $P4_BRANCHES simulated branches, batches of 500, 1 and 2 central instances | **$P5_1 / $P5_2 events/s** — $P5_NOTE | ≥ 40,000 events/s | $(met "$(stats max "$P5_1" "$P5_2")" ge 40000) |
| P6 | branch with 1,000,000 pending events: time until central has them all | $P6_S s — $P6_NOTE | ≤ 20 s | $(met "$P6_S" le 20) |
| P7 | sync latency p99 (commit → central ack), healthy, 1,000 sales/s | $P7_P99 ms — $P7_NOTE | ≤ 50 ms | $(met "$P7_P99" le 50) |
| P8 | branch restart to ready, 1,000,000 pending events, 100,000 products | $P8_S s — $P8_NOTE | ≤ 3 s | $(met "$P8_S" le 3) |
| P9 | RSS | $P9_BRANCH${P9_CENTRAL:+; $P9_CENTRAL} | report, then halve | report |
| P10 | \`/sell\` p99 during 200 concurrent logins ÷ idle, 200 sales/s open loop | **$P10_R** — $P10_NOTE | ≤ 2 | $(met "$P10_R" le 2) |
| P11 | \`/sell\` on a shift with a cash payment (change) ÷ plain \`/sell\`, same branch, central down (as P1), alternating rounds | **$P11_R** — $P11_NOTE | ≥ 0.9 | $(met "$P11_R" ge 0.9) |
| P11′ | the same with central up on the same 2 cores (central applies the shifts and payments too) | $P11_UP — $P11_UP_NOTE | — | report |
| P12 | \`GET /products/search\` p99 over $P9_PRODUCTS products, one request at a time, measured at the client (bounds the server's time) | $(p12_p99) ms — $P12_LINE | ≤ 1 ms | $(met "$(p12_p99)" le 1) |
| P13 | cashier's page weight: \`/\` and every asset, gzip as served | $P13_WEIGHT KB — $P13_NOTE | ≤ 150 KB | $(met "$P13_WEIGHT" le 150) |
| P13′ | cashier's page time to interactive, headless Chromium on localhost (navigation start → first screen focused), median of reloads | $P13_TTI ms (first load, empty cache: ${P13_COLD:-n/a} ms) | ≤ 300 ms | $(met "$P13_TTI" le 300) |
| P13″ | scan to basket over $P13_PRODUCTS products (barcode + Enter → the line on screen, in the page), p95 | $P13_SCAN ms | ≤ 50 ms | $(met "$P13_SCAN" le 50) |
$P14_ROWS${P14_NOTE:+| P14 | sales reports | $P14_NOTE | — | — |
}
## What each figure runs

- **Baseline** (\`colmena-bench baseline --workers 2\`): actix-web, the branch's own
  \`SellRequest\` through the same JSON extractor config, a bearer check, an all-or-nothing
  \`DashMap\` decrement, and a \`SaleResponse\` 201 of the same shape as the branch's.
  Nothing durable, no metrics middleware: the in-memory ceiling of \`/sell\` on this machine.
- **Branch** (\`colmena-sucursal --branch-id CUS --pos-token t --data-dir TMP --catalog FILE
  --central-url http://127.0.0.1:1 --listen 127.0.0.1:0\`): the real durable path (SQLite WAL,
  group commit, one fdatasync of the WAL per batch by the syncer thread before any 201), a fresh data dir per run, a 100-product catalog with
  10⁹ units each so no sale is refused (every run asserts zero non-2xx answers).
- **P1″** (diagnostic): in each P1 round, the same branch command with \`--data-dir\` on
  \`/dev/shm\` (tmpfs: the WAL writes go to RAM and an fdatasync returns at once). It
  separates what the disk costs from what the code costs; it is not a way to run a store.
- **P1 floor** (diagnostic, \`colmena-bench baseline --durable-dir DIR\`, DIR next to the
  branch's data dir): the baseline, but each 201 waits until the answer's bytes are
  fdatasync'd to a preallocated log, through the least a group commit can do (handlers
  append under one lock; one thread writes everything waiting in one \`pwrite\`, fsyncs, and
  answers the batch). No SQLite, no metrics, no recovery: not a store, only what a design
  that answers after an fsync pays on this disk at the least (\`--syncers 1\`, plain group commit, the
  faster of the two under saturation). In P2 it runs at the same rate twice: with one fsync
  in flight, and with \`--syncers 2\`, where a batch starts its fsync while the previous one
  is still in flight.
- **P3 "up"**: a real \`colmena-central\` (fresh SQLite file) with the branch's token; the
  relay pushes to it during the run, on the same 2 cores. "down": \`--central-url
  http://127.0.0.1:1\` (connection refused, breaker open). Both sides sell P1..P100 in turn
  (10⁶ units each) with the same wrk settings.
- **P4** (\`colmena-bench push-load\`): $P4_BRANCHES branches \`B0001…\` pushing consecutive seqs in
  batches of 500 sale events (1–3 lines, valid totals), gzip'd like the relay above 1 KiB,
  $P4_CONC concurrent pushers, each branch's batches in order; all bodies built before the clock
  starts. events/s = events acknowledged by a 200 ÷ wall time. Admin token (may push for any
  branch). Push latency = one \`POST /sync/push\` round trip.
- **P2/P7** ($(if [ -n "$OHA" ]; then "$OHA" --version 2>/dev/null | head -1; else echo "oha: not installed"; fi)): open loop at a fixed rate with
  \`--latency-correction\` (latency counted from when each request *should* have been sent, so
  a stall is not hidden by coordinated omission). P2: the branch (central down) at half its P1
  median, 64 connections, and the baseline at the same rate for reference. P7: the branch
  with a live central at 1,000 sales/s, 16 connections; the p99 comes from the branch's own
  \`colmena_sync_latency_seconds\` histogram (commit → central's ack), interpolated inside
  its bucket (bounds 5, 10, 25, 50, 100 ms…).
- **P6/P8/P9** (one store): first boot with $P9_PRODUCTS products (each seeded as an adjustment
  event), then \`/sell\` over 100 products with central down until $PENDING_TARGET events are
  pending; stop; restart against a fresh live central. P8 = exec → \`listening on\`; P6 = exec →
  central's \`applied_through\` equals the branch's \`last_seq\`. RSS from \`/proc/PID/status\`.

## Raw numbers of this run

\`\`\`
$(cat "$RAW")
\`\`\`
${PROFILE_NOTE:+
$PROFILE_NOTE
}
## Analysis (hand-written, kept across regenerations)

$PRESERVED
EOF
} > "$OUT"
log "wrote $OUT"
if [ "$QUICK" = 1 ] && [ "${OUT#"$WORK"/}" != "$OUT" ]; then
  sed -n '/^## Figures/,/^## What each figure runs/p' "$OUT" | sed '$d'
fi
exit 0
