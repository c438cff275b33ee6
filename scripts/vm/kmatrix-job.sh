#!/bin/bash
# The job `make kernel-matrix` runs inside each guest (as root, from the shared repository at its
# host path). Inputs (environment, from the host's job.sh): KM_REPO, KM_OUT (this kernel's
# results folder), KM_TEST_TIMEOUT, KM_DEMO_TIMEOUT, KM_DEMO_ARGS; KM_OUT/tests.tsv lists the
# test binaries (name, package folder, executable). Writes into KM_OUT: kernel.txt, probe.txt
# (+ probe.json), demo.log/demo.status/demo.json, tests/<name>.log and tests/status.tsv.
set -uo pipefail
out=$KM_OUT
repo=$KM_REPO
export RUST_BACKTRACE=0 L2XDP_REQUIRE_TSHARK=1
start=$(date +%s)
mkdir -p "$out/tests"
: >"$out/tests/status.tsv"

{
  uname -r
  cat /proc/version
} >"$out/kernel.txt"
echo "== kernel $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ {print int($2/1024) " MiB"}' /proc/meminfo)"

# (a) what the kernel offers, by the project's own probe (read-only).
# With --iface: a veth pair, as the lab uses, for the XDP modes and AF_XDP zero-copy.
dp=$repo/target/release/l2xdp-dataplane
if "$dp" probe --help >/dev/null 2>&1; then
  ifargs=()
  if "$dp" probe --help 2>&1 | grep -q -- --iface &&
    ip link add kmprobe0 type veth peer name kmprobe1 2>/dev/null; then
    ip link set kmprobe0 up
    ip link set kmprobe1 up
    ifargs=(--iface kmprobe0)
  fi
  echo "== l2xdp-dataplane probe ${ifargs[*]}"
  timeout 300 "$dp" probe "${ifargs[@]}" >"$out/probe.txt" 2>&1
  echo $? >"$out/probe.status"
  cat "$out/probe.txt"
  timeout 300 "$dp" probe "${ifargs[@]}" --json >"$out/probe.json" 2>"$out/probe.json.err" || true
  ip link del kmprobe0 2>/dev/null || true
else
  echo "probe unavailable" >"$out/probe.txt"
  echo "== probe unavailable (no 'l2xdp-dataplane probe' in this build)"
fi

# (c) the demo (`make run`), first: it is the headline and must not be lost to a slow test.
echo "== l2xdp-bench demo $KM_DEMO_ARGS"
t0=$(date +%s)
# shellcheck disable=SC2086
timeout -k 10 "$KM_DEMO_TIMEOUT" "$repo/target/release/l2xdp-bench" demo --json "$out/demo.json" \
  $KM_DEMO_ARGS >"$out/demo.log" 2>&1
echo "$? $(($(date +%s) - t0))" >"$out/demo.status"
grep -E '^(PASS|FAIL)' "$out/demo.log" || tail -5 "$out/demo.log"

# (b) the fast-path test binaries, one at a time, from their package folder as cargo runs them.
while IFS=$'\t' read -r name dir exe; do
  [ -n "$name" ] || continue
  echo "== $name"
  t0=$(date +%s)
  (cd "$dir" && CARGO_MANIFEST_DIR=$dir timeout -k 10 "$KM_TEST_TIMEOUT" "$exe" --show-output) \
    >"$out/tests/$name.log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(($(date +%s) - t0))" >>"$out/tests/status.tsv"
  grep -E '^test result:' "$out/tests/$name.log" || echo "no libtest summary (exit $rc)"
done <"$out/tests.tsv"

echo "$(($(date +%s) - start))" >"$out/guest-seconds"
echo "== done in $(($(date +%s) - start)) s"
