# shellcheck shell=bash
# Re-usable pieces for booting stock Debian kernels under qemu (sourced, not run):
#
#   vm_host_tools                 install qemu, debootstrap, busybox-static, ... when missing
#   vm_debian_uri                 the Debian archive URI of this machine's own apt configuration
#   vm_fetch_kernel SUITE [PKG]   download + unpack a stock kernel package of SUITE (private apt
#                                 state; the host's apt configuration is not touched); sets
#                                 VM_KVER, VM_KDIR (vmlinuz, lib/modules/VM_KVER, initrd.img)
#   vm_build_initramfs KDIR KVER  a tiny busybox initramfs that loads virtio/ext4/9p and boots
#                                 the root image, shares and job given on the kernel command line
#   vm_build_rootfs DIR IMG [PKG...]  debootstrap --variant=minbase bookworm + packages, as an
#                                 ext4 image (mkfs.ext4 -d, no loop mount); booted snapshot=on
#   vm_accel KDIR                 "kvm" when a KVM guest really boots here, else "tcg"
#   vm_boot ...                   boot one guest that runs a job script and powers off
#
# Everything downloaded lives under VM_CACHE (default target/kernel-matrix/cache of the repo,
# gitignored). The guest side is scripts/vm/guest-init.sh (PID 1 in the guest), read through
# the shared repository, so changing it needs no rebuild of the root file system.
# Needs root (debootstrap, mkfs -d with root-owned files, qemu with 9p passthrough).

VM_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_REPO=${VM_REPO:-$(cd "$VM_LIB_DIR/../.." && pwd)}
VM_CACHE=${VM_CACHE:-$VM_REPO/target/kernel-matrix/cache}
VM_ARCH=amd64
VM_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

vm_log() { echo "[vm $(date +%H:%M:%S)] $*" >&2; }
vm_die() {
  echo "vm: error: $*" >&2
  exit 1
}

# Host packages the VM pieces need; installed only when missing (like scripts/setup.sh).
vm_host_tools() {
  local p missing=()
  for p in qemu-system-x86 qemu-utils debootstrap busybox-static e2fsprogs cpio xz-utils zstd kmod \
    debian-archive-keyring jq; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || vm_die "need root to install ${missing[*]}"
    vm_log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# The URI of the Debian archive in this machine's apt configuration: the first enabled "deb"
# source whose suites include the host's own release (not -security/-updates). VM_DEBIAN_URI
# overrides it. Nothing is hard-coded: the mirror is whatever this machine already uses.
vm_debian_uri() {
  if [ -n "${VM_DEBIAN_URI:-}" ]; then
    echo "$VM_DEBIAN_URI"
    return
  fi
  local codename f uri=""
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ -n "$codename" ] || vm_die "no VERSION_CODENAME in /etc/os-release"
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    case "$f" in
    *.sources)
      # deb822: paragraphs of "Field: value" lines.
      uri=$(awk -v want="$codename" '
        function flush() {
          if (!done && types ~ /(^| )deb( |$)/ && enabled != "no") {
            n = split(suites, s, " ")
            for (i = 1; i <= n; i++) if (s[i] == want) { split(uris, u, " "); print u[1]; done = 1; exit }
          }
          types = ""; suites = ""; uris = ""; enabled = ""
        }
        /^[[:space:]]*#/ { next }
        /^[[:space:]]*$/ { flush(); next }
        {
          line = $0; key = tolower(line); sub(/:.*/, "", key)
          val = line; sub(/^[^:]*:[[:space:]]*/, "", val)
          if (key == "types") types = val
          else if (key == "suites") suites = val
          else if (key == "uris") uris = val
          else if (key == "enabled") enabled = tolower(val)
        }
        END { flush() }' "$f")
      ;;
    *)
      # one-line style: deb [options] uri suite components...
      uri=$(awk -v want="$codename" '
        $1 == "deb" {
          i = 2
          if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
          if ($(i+1) == want) { print $i; exit }
        }' "$f")
      ;;
    esac
    if [ -n "$uri" ]; then
      echo "${uri%/}"
      return
    fi
  done
  vm_die "no Debian archive for '$codename' found in the apt configuration (set VM_DEBIAN_URI)"
}

# apt with a private state for SUITE: its own sources list (derived from the host's mirror),
# lists, cache and an empty dpkg status. The host's apt configuration is not changed.
vm_apt() {
  local suite=$1
  shift
  local d=$VM_CACHE/apt/$suite
  apt-get -q \
    -o Dir::State="$d/state" -o Dir::State::status="$d/state/status" \
    -o Dir::Cache="$d/cache" -o Dir::Etc::SourceList="$d/sources.list" \
    -o Dir::Etc::SourceParts="$d/sources.list.d" -o Dir::Etc::Preferences="$d/preferences" \
    -o Dir::Etc::PreferencesParts="$d/preferences.d" -o APT::Architecture="$VM_ARCH" \
    -o APT::Architectures="$VM_ARCH" -o Acquire::Languages=none "$@"
}
vm_apt_cache() {
  local suite=$1
  shift
  local d=$VM_CACHE/apt/$suite
  apt-cache \
    -o Dir::State="$d/state" -o Dir::State::status="$d/state/status" \
    -o Dir::Cache="$d/cache" -o Dir::Etc::SourceList="$d/sources.list" \
    -o Dir::Etc::SourceParts="$d/sources.list.d" -o Dir::Etc::Preferences="$d/preferences" \
    -o Dir::Etc::PreferencesParts="$d/preferences.d" -o APT::Architecture="$VM_ARCH" \
    -o APT::Architectures="$VM_ARCH" "$@"
}

vm_apt_update() {
  local suite=$1 d=$VM_CACHE/apt/$1 uri
  uri=$(vm_debian_uri)
  mkdir -p "$d/state/lists/partial" "$d/cache/archives/partial" "$d/sources.list.d" "$d/preferences.d"
  : >"$d/preferences"
  [ -f "$d/state/status" ] || : >"$d/state/status"
  echo "deb [signed-by=$VM_KEYRING] $uri $suite main" >"$d/sources.list"
  # A day-old list is good enough; the packages are pinned by what was downloaded anyway.
  if [ -z "$(find "$d/state/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null)" ]; then
    vm_log "apt update ($suite, private state in $d)"
    vm_apt "$suite" update >"$d/update.log" 2>&1 || {
      cat "$d/update.log" >&2
      vm_die "apt-get update for $suite failed"
    }
  fi
}

# vm_fetch_kernel SUITE [PKG]: PKG defaults to linux-image-amd64 (the suite's current kernel);
# a metapackage is followed to the versioned image package. Sets VM_KVER and VM_KDIR.
vm_fetch_kernel() {
  local suite=$1 pkg=${2:-linux-image-amd64} real deb kdir kver
  vm_apt_update "$suite"
  real=$pkg
  # Follow metapackages (linux-image-amd64 -> linux-image-X.Y.Z-N-amd64).

  for _ in 1 2 3; do
    local dep
    dep=$(vm_apt_cache "$suite" show --no-all-versions "$real" 2>/dev/null |
      awk -F': ' '/^Depends:/ {print $2; exit}' | tr ',' '\n' | sed 's/^ *//; s/ .*//' |
      grep -E '^linux-image-[0-9]' | head -1 || true)
    [ -n "$dep" ] || break
    real=$dep
  done
  vm_apt_cache "$suite" show --no-all-versions "$real" >/dev/null 2>&1 ||
    vm_die "no package $real in $suite"
  kdir=$VM_CACHE/kernels/$suite/$real
  if [ ! -f "$kdir/.done" ]; then
    vm_log "downloading $real ($suite)"
    rm -rf "$kdir"
    mkdir -p "$kdir/deb"
    (cd "$kdir/deb" && vm_apt "$suite" download "$real" >"$kdir/download.log" 2>&1) || {
      cat "$kdir/download.log" >&2
      vm_die "apt-get download $real ($suite) failed"
    }
    deb=$(ls "$kdir"/deb/*.deb | head -1)
    mkdir -p "$kdir/root"
    dpkg-deb -x "$deb" "$kdir/root"
    # usr-merged packages ship usr/lib/modules; give both layouts one place.
    if [ -d "$kdir/root/usr/lib/modules" ] && [ ! -e "$kdir/root/lib/modules" ]; then
      mkdir -p "$kdir/root/lib"
      ln -s ../usr/lib/modules "$kdir/root/lib/modules"
    fi
    kver=$(ls "$kdir/root/lib/modules/" | head -1)
    [ -n "$kver" ] || vm_die "$deb holds no modules"
    depmod -b "$kdir/root" "$kver"
    cp "$kdir/root/boot/vmlinuz-$kver" "$kdir/vmlinuz"
    echo "$kver" >"$kdir/kver"
    basename "$deb" >"$kdir/package"
    vm_build_initramfs "$kdir" "$kver"
    touch "$kdir/.done"
  elif [ "$VM_LIB_DIR/initramfs-init.sh" -nt "$kdir/initrd.img" ] ||
    [ "$VM_LIB_DIR/lib.sh" -nt "$kdir/initrd.img" ]; then
    vm_build_initramfs "$kdir" "$(cat "$kdir/kver")"
  fi
  # shellcheck disable=SC2034 # results for the caller
  VM_KDIR=$kdir
  # shellcheck disable=SC2034
  VM_KVER=$(cat "$kdir/kver")
}

# Modules the initramfs loads, in this order (with their dependencies), to reach the root image
# (virtio-blk, ext4) and the shared folders (virtio-9p). Missing ones are built in or absent.
VM_INITRD_MODULES=(virtio_pci virtio_blk crc32c_generic crc32c_intel libcrc32c ext4 9pnet_virtio 9p)

# vm_build_initramfs KDIR KVER -> KDIR/initrd.img
vm_build_initramfs() {
  local kdir=$1 kver=$2 work m line ko dst
  work=$(mktemp -d)
  mkdir -p "$work"/{bin,mods,proc,sys,dev,newroot}
  cp /bin/busybox "$work/bin/busybox"
  : >"$work/mods/order"
  for m in "${VM_INITRD_MODULES[@]}"; do
    modprobe -d "$kdir/root" -S "$kver" --show-depends "$m" 2>/dev/null | while read -r line; do
      case "$line" in
      insmod*)
        ko=$(echo "$line" | awk '{print $2}')
        dst=$(basename "$ko")
        dst=${dst%.xz}
        dst=${dst%.zst}
        [ -f "$work/mods/$dst" ] && continue
        case "$ko" in
        *.xz) xz -dc "$ko" >"$work/mods/$dst" ;;
        *.zst) zstd -qdc "$ko" >"$work/mods/$dst" ;;
        *) cp "$ko" "$work/mods/$dst" ;;
        esac
        echo "$dst" >>"$work/mods/order"
        ;;
      esac
    done
  done
  cp "$VM_LIB_DIR/initramfs-init.sh" "$work/init"
  chmod +x "$work/init"
  (cd "$work" && find . | cpio -o -H newc --quiet | gzip -1) >"$kdir/initrd.img"
  rm -rf "$work"
}

# vm_build_rootfs DIR IMG [PKG...]: a minimal bookworm (the host's userland, so host-built
# binaries run) with PKG, as an ext4 image. Rebuilt only when the package list changes.
vm_build_rootfs() {
  local dir=$1 img=$2
  shift 2
  local pkgs uri stamp
  pkgs=$(printf '%s\n' "$@" | sort -u | paste -sd, -)
  stamp="bookworm minbase $pkgs"
  if [ -f "$img" ] && [ "$(cat "$img.stamp" 2>/dev/null)" = "$stamp" ]; then
    return
  fi
  uri=$(vm_debian_uri)
  rm -rf "$dir" "$img" "$img.stamp"
  mkdir -p "$(dirname "$dir")"
  vm_log "debootstrap --variant=minbase bookworm ($pkgs)"
  DEBIAN_FRONTEND=noninteractive debootstrap --variant=minbase --arch="$VM_ARCH" \
    --keyring="$VM_KEYRING" --include="$pkgs" bookworm "$dir" "$uri" \
    >"$dir.debootstrap.log" 2>&1 || {
    tail -30 "$dir.debootstrap.log" >&2
    vm_die "debootstrap failed (log: $dir.debootstrap.log)"
  }
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  echo "kmatrix" >"$dir/etc/hostname"
  printf '127.0.0.1 localhost kmatrix\n::1 localhost\n' >"$dir/etc/hosts"
  mkdir -p "$dir/sys/fs/bpf" "$dir/lib/modules"
  local size_mb
  size_mb=$(($(du -sm "$dir" | cut -f1) + 512))
  vm_log "mkfs.ext4 -d ($size_mb MiB)"
  mkfs.ext4 -q -F -L kmroot -d "$dir" "$img" "${size_mb}M"
  echo "$stamp" >"$img.stamp"
}

# vm_accel KDIR: "kvm" if a guest with this kernel really boots under KVM here (a short boot
# whose init prints a marker and powers off), else "tcg". VM_ACCEL=kvm|tcg forces it.
vm_accel() {
  local kdir=$1 log
  if [ -n "${VM_ACCEL:-}" ]; then
    echo "$VM_ACCEL"
    return
  fi
  if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    log=$(mktemp)
    # In a subshell: a qemu that aborts must not make the shell print a job notice.
    (timeout 60 qemu-system-x86_64 -accel kvm -cpu host -smp 1 -m 512 -machine q35 \
      -display none -monitor none -no-reboot -serial "file:$log" \
      -kernel "$kdir/vmlinuz" -initrd "$kdir/initrd.img" \
      -append "console=ttyS0 panic=-1 kmprobe=1" >"$log.err" 2>&1) 2>/dev/null || true
    if grep -q KMATRIX-PROBE-OK "$log"; then
      rm -f "$log" "$log.err"
      echo kvm
      return
    fi
    vm_log "KVM does not boot a stock kernel here; using TCG (qemu: $(grep -m1 -i error "$log.err" || echo "no console output within 60 s"))"
    rm -f "$log" "$log.err"
  fi
  echo tcg
}

# vm_boot KDIR IMG ACCEL SHARE JOB OUTDIR TIMEOUT [MEM_MB] [CPUS]
#   Boots KDIR's kernel with the root image IMG (snapshot=on: never written), the host folder
#   SHARE mounted read-write at the same path in the guest (virtio-9p), the kernel's modules at
#   /lib/modules, and runs JOB (a script under SHARE) as root via scripts/vm/guest-init.sh,
#   which writes JOB's output and exit status to OUTDIR (under SHARE) and powers off.
#   Serial console: OUTDIR/console.log. Returns 0 when the guest powered off by itself, 124
#   on timeout (qemu killed), else qemu's status. The job's status is in OUTDIR/job.status.
#   VM_NET: qemu's network options (default "-nic none": no network), e.g. a tap
#   ("-netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=n0").
VM_BOOT_PID=
# Stops a guest vm_boot started (for the caller's EXIT/INT/TERM trap).
vm_stop() {
  if [ -n "${VM_BOOT_PID:-}" ]; then
    kill "$VM_BOOT_PID" 2>/dev/null || true
    wait "$VM_BOOT_PID" 2>/dev/null || true
    VM_BOOT_PID=
  fi
}
vm_boot() {
  local kdir=$1 img=$2 accel=$3 share=$4 job=$5 outdir=$6 tmo=$7 mem=${8:-3072} cpus=${9:-2}
  local kver cpu rc=0
  kver=$(cat "$kdir/kver")
  case "$accel" in
  kvm) cpu=host ;;
  *) cpu=max ;;
  esac
  mkdir -p "$outdir"
  rm -f "$outdir/job.status"
  local accel_opt=$accel
  # TCG runs the vCPUs in one host thread by default (VM_TCG_THREAD=single): multi-threaded
  # TCG races with a guest kernel that patches its own text with int3 (the BPF dispatcher on
  # XDP attach, static keys), and the guest oopses (seen twice in xdp_kill9 on 6.12); single
  # was no slower for these tests. VM_TCG_THREAD=multi to try it.
  [ "$accel" = tcg ] && accel_opt="tcg,thread=${VM_TCG_THREAD:-single}"
  local cmdline="console=ttyS0 panic=-1 loglevel=4 kmroot=/dev/vda kmshare=$share"
  cmdline+=" kmjob=$job kmout=$outdir kmkver=$kver"
  # timeout(1) runs in a process group of its own: VM_BOOT_PID lets the caller's trap stop it
  # (and so qemu) on Ctrl-C or SIGTERM.
  local net
  read -ra net <<<"${VM_NET:--nic none}" # (words, no globbing)
  timeout --kill-after=10 "$tmo" qemu-system-x86_64 -accel "$accel_opt" -cpu "$cpu" \
    -smp "$cpus" -m "$mem" -machine q35 -display none -monitor none -no-reboot \
    -serial "file:$outdir/console.log" \
    -kernel "$kdir/vmlinuz" -initrd "$kdir/initrd.img" -append "$cmdline" \
    -drive "file=$img,format=raw,if=virtio,snapshot=on" \
    -fsdev "local,id=share,path=$share,security_model=none" \
    -device "virtio-9p-pci,fsdev=share,mount_tag=share" \
    -fsdev "local,id=kmods,path=$kdir/root/lib/modules,security_model=none,readonly=on" \
    -device "virtio-9p-pci,fsdev=kmods,mount_tag=kmods" \
    "${net[@]}" </dev/null >"$outdir/qemu.log" 2>&1 &
  VM_BOOT_PID=$!
  wait "$VM_BOOT_PID" || rc=$?
  VM_BOOT_PID=
  return $rc
}
