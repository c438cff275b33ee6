#!/usr/bin/env bash
# The closing totals of scripts/test.sh, from the captured output of the cargo test runs (LOG)
# and the skips the tests recorded (SKIPS: one `<test>\t<reason>` line each, written by
# l2xdp_lab::skip through L2XDP_SKIP_LOG; missing or empty when none).
#
# A recorded skip is a test that returned early, so libtest counted it as passed:
#   passed  = libtest passed  - recorded skips
#   skipped = libtest ignored + recorded skips
# Each skip is listed first (`skipped: <test> (<reason>)`, ignored tests as `(ignored)`), then
# the last line, which CI parses: `tests: N passed, N failed, N skipped`.
#
# Usage: scripts/totals.sh LOG [SKIPS]
set -euo pipefail
log=$1
skips=${2:-/dev/null}
[ -e "$skips" ] || skips=/dev/null

awk -F'\t' -v skips="$skips" '
  # The skip log (first file): test, reason.
  FILENAME == skips { if ($0 != "") { k++; st[k] = $1; sr[k] = ($2 == "" ? "no reason given" : $2) }; next }
  # The cargo log: a "test result:" line per test binary, "test NAME ... ignored" per ignored.
  /^test result:/ {
    n = split($0, w, /[ ;]+/)
    for (i = 1; i < n; i++) {
      if (w[i+1] ~ /^passed/) p += w[i]
      if (w[i+1] ~ /^failed/) f += w[i]
      if (w[i+1] ~ /^ignored/) s += w[i]
    }
    next
  }
  /^test .* \.\.\. ignored/ { sub(/^test /, ""); sub(/ \.\.\. ignored.*/, ""); ig[++g] = $0 }
  END {
    printf "\n"
    for (i = 1; i <= g; i++) printf "skipped: %s (ignored)\n", ig[i]
    for (i = 1; i <= k; i++) printf "skipped: %s (%s)\n", st[i], sr[i]
    printf "tests: %d passed, %d failed, %d skipped\n", p - k, f, s + k
  }
' "$skips" "$log"
