#!/usr/bin/env bash
# Set-up for l2xdp on a fresh Debian machine: the system packages the build and the tests need,
# and a bpffs mount. Idempotent: installs only what is missing, mounts only when unmounted.
# Needs root (apt-get, mount); the Rust toolchain (rustup, stable >= 1.95) is expected to exist.
set -euo pipefail

packages=(
  clang llvm libelf-dev zlib1g-dev pkg-config m4   # eBPF C programs, libxdp for xsk-rs
  libbpf-dev linux-libc-dev                        # BPF helper headers for the XDP programs
  tshark                                           # the wire tests check emitted packets with Wireshark
  freeradius freeradius-utils                      # tests/tests/radius.rs: a real RADIUS server and radclient
  iproute2 ethtool                                 # namespaces, veth, XDP attach, offload settings
  python3                                          # small helpers in tests
  valgrind                                         # l2xdp-bench cost: callgrind counts the AF_XDP worker's instructions
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to install packages (run as root or with sudo)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer no without a prompt.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (rustup, stable >= 1.95) first" >&2
  exit 1
fi

# bpffs: pinned maps live in /sys/fs/bpf/l2xdp and must outlive every process.
if [ -d /sys/fs/bpf ] && ! mountpoint -q /sys/fs/bpf; then
  if [ "$(id -u)" -eq 0 ]; then
    mount -t bpf bpf /sys/fs/bpf
    echo "setup: mounted bpffs on /sys/fs/bpf"
  else
    echo "setup: /sys/fs/bpf is not mounted and we are not root; the XDP tests need both" >&2
  fi
fi

echo "setup: ok"
