#!/usr/bin/env bash
# Every test of the workspace, then one closing line with the totals ("N passed, N failed").
# `make test` runs this after set-up and lint; the exit status is cargo's.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT

status=0
cargo test --workspace --doc 2>&1 | tee -a "$log" || status=$?
if [ $status -eq 0 ]; then
  L2XDP_REQUIRE_TSHARK=1 cargo test --workspace --all-targets 2>&1 | tee -a "$log" || status=$?
fi

awk '/^test result:/ {
       for (i = 1; i <= NF; i++) {
         if ($(i+1) ~ /^passed/) p += $i
         if ($(i+1) ~ /^failed/) f += $i
         if ($(i+1) ~ /^ignored/) s += $i
       }
     }
     END { printf "\ntests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit $status
