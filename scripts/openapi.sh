#!/usr/bin/env bash
# Regenerates the committed OpenAPI documents from the code:
#   docs/openapi/sucursal.json  ← colmena-sucursal openapi
#   docs/openapi/central.json   ← colmena-central openapi
# (the same bytes each service serves at GET /openapi.json). tests/api/openapi.rs fails when a
# committed copy differs from what the code generates; run this and commit the result.
# Usage: scripts/openapi.sh [--check]   (--check: only report whether they are stale)
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q -p colmena-sucursal --bin colmena-sucursal -p colmena-central --bin colmena-central
mkdir -p docs/openapi
stale=0
for svc in sucursal central; do
  out="docs/openapi/$svc.json"
  tmp="$(mktemp)"
  "target/release/colmena-$svc" openapi >"$tmp"
  if [ "${1:-}" = "--check" ]; then
    if ! cmp -s "$tmp" "$out"; then echo "$out is stale"; stale=1; fi
    rm -f "$tmp"
  else
    cat "$tmp" >"$out"
    rm -f "$tmp"
    echo "wrote $out ($(wc -c <"$out") bytes)"
  fi
done
exit "$stale"
