#!/usr/bin/env bash
# `make kernel-matrix`: boots stock Debian kernels under qemu and runs, inside each, the fast
# path's probe (`l2xdp-dataplane probe`), the demo (`l2xdp-bench demo`, what `make run` runs) and
# the fast-path test binaries, built once here on the host. Slow (TCG when KVM does not work), so
# not part of `make test`.
#
# Per kernel: target/kernel-matrix/results/<suite>-<version>/ (result.json, result.txt, the
# probe's output, the demo's log, each test binary's log, the serial console). Then
# target/kernel-matrix/results/matrix.{md,json}: one row per kernel, for the README.
#
# Settings (environment; `make kernel-matrix KM_KERNELS=bookworm`):
#   KM_KERNELS       kernels, each SUITE or SUITE:PACKAGE (default: bullseye bookworm trixie,
#                    each suite's linux-image-amd64)
#   KM_TESTS         PACKAGE:TEST patterns of the test binaries to run (default: the fast path's)
#   KM_VM_TIMEOUT    hard limit per kernel, seconds (default 5400)
#   KM_TEST_TIMEOUT  limit per test binary, seconds (default 1800)
#   KM_DEMO_TIMEOUT  limit for the demo, seconds (default 900); KM_DEMO_ARGS its options
#   KM_MEM           guest memory, MiB (default 3072); 2 vCPUs
#   KM_BOOTS         boots per kernel when its guest dies (panic): the job resumes after what
#                    it finished, the step that was running recorded as crashed (default 3)
#   VM_TCG_THREAD    single|multi (default single): TCG's vCPU threads (multi: guest oopses
#                    in self-patched kernel text were seen)
#   KM_BUILD=0       use the binaries already built (target/release, the test executables)
#   KM_README=1      also replace the README's table between its kernel-matrix markers
#   KM_STRICT=1      exit 1 when a test or the demo failed (default: only when a guest did not
#                    finish its job: no boot, timeout, crash)
#   VM_ACCEL=kvm|tcg force the accelerator (default: KVM if a probe boot works, else TCG)
#   VM_CACHE         where kernels, apt state and the root file system are kept
#                    (default target/kernel-matrix/cache)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
# shellcheck source=scripts/vm/lib.sh
source "$REPO/scripts/vm/lib.sh"

KM_DIR=${KM_DIR:-$REPO/target/kernel-matrix}
KM_KERNELS=${KM_KERNELS:-bullseye bookworm trixie}
KM_TESTS=${KM_TESTS:-l2xdp-dataplane:kernel_features l2xdp-dataplane:xdp_prog l2xdp-dataplane:e2e l2xdp-dataplane:kernel_path l2xdp-dataplane:afxdp_* l2xdp-dataplane:cpumap l2xdp-dataplane:capacity l2xdp-tests:xdp_e2e l2xdp-tests:xdp_kill9}
KM_VM_TIMEOUT=${KM_VM_TIMEOUT:-5400}
KM_TEST_TIMEOUT=${KM_TEST_TIMEOUT:-1800}
KM_DEMO_TIMEOUT=${KM_DEMO_TIMEOUT:-900}
KM_DEMO_ARGS=${KM_DEMO_ARGS:-}
KM_MEM=${KM_MEM:-3072}
KM_BUILD=${KM_BUILD:-1}
KM_README=${KM_README:-0}
KM_STRICT=${KM_STRICT:-0}
KM_BOOTS=${KM_BOOTS:-3}
CARGO=${CARGO:-cargo}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
case "$TARGET" in /*) ;; *) TARGET=$REPO/$TARGET ;; esac

# The root file system: the host's own userland (bookworm, so host-built binaries run) and what
# the tests and the demo call: ip, ethtool, sysctl, ping, tshark/dumpcap, modprobe.
# bpftool: the whole verifier log of a program a kernel refuses.
ROOTFS_PACKAGES=(iproute2 ethtool kmod procps iputils-ping tshark bpftool libelf1 zlib1g python3 strace less)

[ "$(id -u)" -eq 0 ] || vm_die "make kernel-matrix needs root (debootstrap, qemu with 9p shares)"
case "$TARGET" in "$REPO"/*) ;; *) vm_die "CARGO_TARGET_DIR must be inside the repository (it is shared with the guests)" ;; esac

trap 'vm_stop' EXIT
trap 'vm_stop; exit 130' INT
trap 'vm_stop; exit 143' TERM

read -ra km_tests <<<"$KM_TESTS" # (no globbing of the patterns)
vm_host_tools
mkdir -p "$KM_DIR/build" "$KM_DIR/results"

# 1. Build on the host: release binaries (the demo, the probe) and the test executables.
tests_json=$KM_DIR/build/tests.json
if [ "$KM_BUILD" = 1 ]; then
  vm_log "building: $CARGO build --release --workspace --bins"
  $CARGO build --release --workspace --bins
  pkgs=()
  for t in "${km_tests[@]}"; do pkgs+=(-p "${t%%:*}"); done
  vm_log "building the test executables (${pkgs[*]})"
  $CARGO test --no-run --message-format=json "${pkgs[@]}" >"$tests_json"
fi
[ -f "$tests_json" ] || vm_die "no $tests_json: run without KM_BUILD=0 first"
tests_tsv=$KM_DIR/build/tests.tsv
# package_id is "path+file:///…/dir#name@version", "…/dir#version" (name = dir) or, from older
# cargo, "name version (path+file://…)".
jq -r 'select(.reason == "compiler-artifact" and .executable != null and (.target.kind | index("test")))
       | (.package_id | if test("#[^@]+@") then capture("#(?<n>[^@]+)@").n
                        elif test("^path\\+") then (split("#")[0] | split("/") | last)
                        else split(" ")[0] end) as $pkg
       | [$pkg, .target.name, .manifest_path, .executable] | @tsv' "$tests_json" |
  while IFS=$'\t' read -r pkg tname manifest exe; do
    for i in "${!km_tests[@]}"; do
      t=${km_tests[$i]}
      # shellcheck disable=SC2053
      if [ "$pkg" = "${t%%:*}" ] && [[ "$tname" == ${t#*:} ]]; then
        printf '%s\t%s\t%s\t%s\n' "$i" "$pkg:$tname" "$(dirname "$manifest")" "$exe"
        break
      fi
    done
  done | sort -n -k1,1 -s | cut -f2- >"$tests_tsv" # in KM_TESTS' order
[ -s "$tests_tsv" ] || vm_die "no test executables matched KM_TESTS ($KM_TESTS)"
for t in "${km_tests[@]}"; do
  matched=0
  while IFS=$'\t' read -r n _; do
    # shellcheck disable=SC2053
    [ "${n%%:*}" = "${t%%:*}" ] && [[ "${n#*:}" == ${t#*:} ]] && matched=1
  done <"$tests_tsv"
  [ "$matched" = 1 ] || vm_log "WARNING: KM_TESTS pattern $t matched no test binary (moved or renamed?)"
done
vm_log "test binaries: $(cut -f1 "$tests_tsv" | paste -sd' ' -)"

# The fast path's BPF object as built (for bpftool in the guest).
bpf_obj=$(ls -t "$TARGET"/release/build/l2xdp-ebpf-*/out/l2xdp.o 2>/dev/null | head -1 || true)

# 2. The root file system (cached; rebuilt when the package list changes).
vm_build_rootfs "$VM_CACHE/rootfs" "$VM_CACHE/rootfs.ext4" "${ROOTFS_PACKAGES[@]}"

# 3. One guest per kernel.
dirs=()
accel=
failed_guests=0
for spec in $KM_KERNELS; do
  suite=${spec%%:*}
  pkg=
  [ "$spec" != "$suite" ] && pkg=${spec#*:}
  vm_fetch_kernel "$suite" "$pkg"
  [ -n "$accel" ] || accel=$(vm_accel "$VM_KDIR")
  out=$KM_DIR/results/$suite-$VM_KVER
  rm -rf "$out"
  mkdir -p "$out"
  cp "$tests_tsv" "$out/tests.tsv"
  cat >"$out/job.sh" <<JOB
export KM_REPO='$REPO' KM_OUT='$out' KM_TEST_TIMEOUT='$KM_TEST_TIMEOUT'
export KM_DEMO_TIMEOUT='$KM_DEMO_TIMEOUT' KM_DEMO_ARGS='$KM_DEMO_ARGS' KM_BPF_OBJ='$bpf_obj'
exec bash '$REPO/scripts/vm/kmatrix-job.sh'
JOB
  t0=$(date +%s)
  boots=0
  while :; do
    boots=$((boots + 1))
    left=$((KM_VM_TIMEOUT - ($(date +%s) - t0)))
    vm_log "booting $suite $VM_KVER ($accel, ${KM_MEM} MiB, 2 vCPUs, boot $boots, at most ${left} s; console: $out/console.log)"
    rc=0
    vm_boot "$VM_KDIR" "$VM_CACHE/rootfs.ext4" "$accel" "$REPO" "$out/job.sh" "$out" \
      "$left" "$KM_MEM" 2 || rc=$?
    # A guest whose kernel died (panic: it reboots, and -no-reboot makes qemu exit) is booted
    # again; the job resumes after what it finished and records the step that was running.
    if [ -f "$out/job.status" ] || [ "$rc" = 124 ] || [ "$rc" = 137 ] || [ "$boots" -ge "$KM_BOOTS" ] ||
      ! grep -qE 'Kernel panic|KMATRIX-GUEST-UP' "$out/console.log"; then
      break
    fi
    mv "$out/console.log" "$out/console.boot$boots.log"
    vm_log "$suite $VM_KVER: the guest died ($(grep -m1 -E 'Oops|BUG:|Kernel panic' "$out/console.boot$boots.log" | sed 's/^\[[^]]*\] //')); booting again"
  done
  secs=$(($(date +%s) - t0))
  jq -n --arg suite "$suite" --arg package "$(cat "$VM_KDIR/package")" --arg kver "$VM_KVER" \
    --arg accel "$accel" --argjson qemu_status "$rc" --argjson seconds "$secs" \
    --argjson timeout "$KM_VM_TIMEOUT" --arg demo_args "$KM_DEMO_ARGS" --argjson boots "$boots" \
    --arg tcg_thread "${VM_TCG_THREAD:-single}" \
    '{suite: $suite, package: $package, kernel: $kver, accel: $accel, qemu_status: $qemu_status,
      timed_out: ($qemu_status == 124 or $qemu_status == 137), wall_seconds: $seconds,
      timeout_seconds: $timeout, demo_args: $demo_args, boots: $boots, tcg_thread: $tcg_thread}' \
    >"$out/host.json"
  python3 "$REPO/scripts/vm/kmatrix-report.py" kernel "$out"
  if [ ! -f "$out/job.status" ]; then
    failed_guests=$((failed_guests + 1))
    vm_log "$suite $VM_KVER: the guest did not finish its job (qemu status $rc; see $out/console.log)"
  fi
  dirs+=("$out")
done

# 4. The table.
python3 "$REPO/scripts/vm/kmatrix-report.py" matrix "$KM_DIR/results" "${dirs[@]}"
cat "$KM_DIR/results/matrix.md"
if [ "$KM_README" = 1 ]; then
  python3 "$REPO/scripts/vm/kmatrix-report.py" readme "$REPO/README.md" "$KM_DIR/results/matrix.md"
  vm_log "README.md: kernel matrix table replaced"
fi
[ "$failed_guests" -eq 0 ] || vm_die "$failed_guests guest(s) did not finish their job"
if [ "$KM_STRICT" = 1 ] && [ "$(jq '[.kernels[] | select(.ok | not)] | length' "$KM_DIR/results/matrix.json")" != 0 ]; then
  vm_die "a test or the demo failed on some kernel (KM_STRICT=1)"
fi
