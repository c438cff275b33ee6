#!/usr/bin/env bash
# The VM pieces of the interop tests (tests/tests/interop_xl2tpd.rs): a stock Debian bookworm
# kernel, its initramfs and a root file system with Debian's xl2tpd and ppp, all cached under
# VM_CACHE (scripts/vm/lib.sh); the accelerator a guest boots with here. Prints KEY=VALUE lines
# (VM_KDIR, VM_KVER, VM_IMG, VM_ACCEL) on stdout for the test; progress on stderr.
# Host packages missing (qemu, debootstrap, ... by vm_host_tools; ping) are installed. Needs root.
set -euo pipefail
# shellcheck source=scripts/vm/lib.sh
source "$(dirname "$0")/lib.sh"

# The LAC's side: xl2tpd and pppd (and the kernel's L2TP/PPP modules, from the kernel itself);
# ip, ethtool (checksum offload off), ping, pgrep/pkill, modprobe.
INTEROP_PACKAGES=(xl2tpd ppp iproute2 ethtool kmod procps iputils-ping)

[ "$(id -u)" -eq 0 ] || vm_die "the interop VM needs root (debootstrap, qemu with 9p shares)"
vm_host_tools
# What the test runs on the host besides: ping (from the core namespace to the subscriber).
if ! dpkg-query -W -f='${Status}' iputils-ping 2>/dev/null | grep -q "install ok installed"; then
  vm_log "installing iputils-ping"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends iputils-ping >/dev/null
fi
vm_fetch_kernel "${INTEROP_SUITE:-bookworm}"
# Named for its package set: the kernel matrix's image (rootfs.ext4) stays as it is.
name=rootfs-$(printf '%s\n' "${INTEROP_PACKAGES[@]}" | sort -u | paste -sd- - | cut -c1-80)
vm_build_rootfs "$VM_CACHE/$name" "$VM_CACHE/$name.ext4" "${INTEROP_PACKAGES[@]}"
accel=$(vm_accel "$VM_KDIR")
echo "VM_KDIR=$VM_KDIR"
echo "VM_KVER=$VM_KVER"
echo "VM_IMG=$VM_CACHE/$name.ext4"
echo "VM_ACCEL=$accel"
