#!/bin/bash
# The job `make kernel-matrix` runs inside each guest (as root, from the shared repository at its
# host path). Inputs (environment, from the host's job.sh): KM_REPO, KM_OUT (this kernel's
# results folder), KM_TEST_TIMEOUT, KM_DEMO_TIMEOUT, KM_DEMO_ARGS, KM_BPF_OBJ (the fast path's
# object, for bpftool); KM_OUT/tests.tsv lists the
# test binaries (name, package folder, executable). Writes into KM_OUT: kernel.txt, probe.txt
# (+ probe.json), bpftool-load.log, demo.log/demo.status/demo.json, tests/<name>.log and tests/status.tsv.
set -uo pipefail
out=$KM_OUT
repo=$KM_REPO
export RUST_BACKTRACE=0 L2XDP_REQUIRE_TSHARK=1
start=$(date +%s)
mkdir -p "$out/tests"
touch "$out/tests/status.tsv"
# A job resumed after its guest died (the host boots it again): finished steps are skipped, the
# step that was running is recorded as having crashed the guest and not run again.
[ -s "$out/kernel.txt" ] && echo "== resuming after a guest crash"

{
  uname -r
  cat /proc/version
} >"$out/kernel.txt"
echo "== kernel $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ {print int($2/1024) " MiB"}' /proc/meminfo)"

# (a) what the kernel offers, by the project's own probe (read-only).
# With --iface: a veth pair, as the lab uses, for the XDP modes and AF_XDP zero-copy.
dp=$repo/target/release/l2xdp-dataplane
if [ -s "$out/probe.txt" ]; then
  : # done before the crash
elif "$dp" probe --help >/dev/null 2>&1; then
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

# The whole BPF object loaded by bpftool (libbpf prints the full verifier log of the first
# program the kernel refuses; the product's loader keeps only its last lines). Default .rodata
# (the AF_XDP hand-off in the metadata area), nothing attached, the pins removed at once.
if [ -n "${KM_BPF_OBJ:-}" ] && [ -f "$KM_BPF_OBJ" ] && command -v bpftool >/dev/null &&
  [ ! -e "$out/bpftool-load.status" ]; then
  echo crash >"$out/bpftool-load.status" # until it returns
  echo "== bpftool prog loadall $(basename "$KM_BPF_OBJ")"
  pins=/sys/fs/bpf/kmatrix-loadall
  rm -rf "$pins"
  timeout 600 bpftool prog loadall "$KM_BPF_OBJ" "$pins" >"$out/bpftool-load.log" 2>&1
  echo $? >"$out/bpftool-load.status"
  rm -rf "$pins"
  if [ "$(cat "$out/bpftool-load.status")" = 0 ]; then
    echo "loads"
  else
    grep -B3 -- '-- END PROG LOAD LOG --' "$out/bpftool-load.log" | grep -v '^processed'
  fi
fi

# (c) the demo (`make run`), first: it is the headline and must not be lost to a slow test.
if [ -e "$out/demo.status" ]; then
  : # done (or crashed) before
else
echo "crash 0" >"$out/demo.status" # until it returns
echo "== l2xdp-bench demo $KM_DEMO_ARGS"
t0=$(date +%s)
# shellcheck disable=SC2086
timeout -k 10 "$KM_DEMO_TIMEOUT" "$repo/target/release/l2xdp-bench" demo --json "$out/demo.json" \
  $KM_DEMO_ARGS >"$out/demo.log" 2>&1
echo "$? $(($(date +%s) - t0))" >"$out/demo.status"
grep -E '^(PASS|FAIL)' "$out/demo.log" || tail -5 "$out/demo.log"
fi

# (b) the fast-path test binaries, one at a time, from their package folder as cargo runs them.
while IFS=$'\t' read -r name dir exe; do
  [ -n "$name" ] || continue
  if cut -f1 "$out/tests/status.tsv" | grep -qxF "$name"; then
    continue
  fi
  if [ "$(cat "$out/tests/current" 2>/dev/null)" = "$name" ]; then
    printf '%s\tcrash\t0\n' "$name" >>"$out/tests/status.tsv"
    echo "== $name: crashed the guest kernel before (see console.boot*.log); not run again"
    continue
  fi
  echo "$name" >"$out/tests/current"
  sync
  echo "== $name"
  t0=$(date +%s)
  # As make test runs them: root required (a root-only test that cannot run fails), and a test
  # skipped for a kernel feature the probe reports absent recorded in the skip log.
  (cd "$dir" && CARGO_MANIFEST_DIR=$dir L2XDP_REQUIRE_ROOT=1 L2XDP_SKIP_LOG="$out/tests/$name.skips" \
    timeout -k 10 "$KM_TEST_TIMEOUT" "$exe" --show-output) >"$out/tests/$name.log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(($(date +%s) - t0))" >>"$out/tests/status.tsv"
  rm -f "$out/tests/current"
  grep -E '^test result:' "$out/tests/$name.log" || echo "no libtest summary (exit $rc)"
  [ -s "$out/tests/$name.skips" ] && sed 's/^/skipped: /' "$out/tests/$name.skips"
done <"$out/tests.tsv"

echo "$(($(date +%s) - start + $(cat "$out/guest-seconds" 2>/dev/null || echo 0)))" >"$out/guest-seconds.new"
mv "$out/guest-seconds.new" "$out/guest-seconds"
echo "== done in $(($(date +%s) - start)) s"
