#!/usr/bin/env bash
# Every test of the workspace, then the skips and one closing line with the totals
# ("tests: N passed, N failed, N skipped"; scripts/totals.sh). `make test` runs this after
# set-up and lint; the exit status is cargo's.
#
# The tests run as root (namespaces, XDP, bpffs): L2XDP_REQUIRE_ROOT=1 makes a root-only test
# without root, or a bench smoke test without the l2xdpd binary, a failure. A test skipped for
# a kernel feature the probe reports absent (or a resource: "2 CPUs") records itself in
# L2XDP_SKIP_LOG and is counted and listed as skipped, never as passed.
# L2XDP_REQUIRE_ROOT=0 bash scripts/test.sh runs without root, root-only tests recorded as skipped.
set -uo pipefail
cd "$(dirname "$0")/.."

export L2XDP_REQUIRE_ROOT=${L2XDP_REQUIRE_ROOT:-1}
if [ "$L2XDP_REQUIRE_ROOT" = 1 ] && [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh: the tests need root (network namespaces, XDP, bpffs): run make test as root" >&2
  exit 1
fi

log=$(mktemp)
skips=$(mktemp)
trap 'rm -f "$log" "$skips"' EXIT
export L2XDP_SKIP_LOG=$skips

status=0
cargo test --workspace --doc 2>&1 | tee -a "$log" || status=$?
if [ $status -eq 0 ]; then
  L2XDP_REQUIRE_TSHARK=1 cargo test --workspace --all-targets 2>&1 | tee -a "$log" || status=$?
fi

bash scripts/totals.sh "$log" "$skips"
exit $status
