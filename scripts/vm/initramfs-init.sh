#!/bin/busybox sh
# shellcheck shell=dash
# /init of the tiny initramfs built by scripts/vm/lib.sh (vm_build_initramfs): loads the modules
# in /mods/order, mounts the root image (kmroot=), the host share at its own path (kmshare=),
# the kernel's modules (9p tag kmods) at /lib/modules, and hands over to the guest init
# (scripts/vm/guest-init.sh under the share, or kminit=). kmprobe=1: print a marker, power off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

for w in $(cat /proc/cmdline); do
  case "$w" in
  km*=*) eval "${w%%=*}='${w#*=}'" ;;
  esac
done

die() {
  echo "initramfs: $*"
  echo "KMATRIX-INITRAMFS-FAILED"
  echo o >/proc/sysrq-trigger
  sleep 5
}

if [ -n "$kmprobe" ]; then
  echo "KMATRIX-PROBE-OK $(uname -r)"
  echo o >/proc/sysrq-trigger
  sleep 5
fi

for m in $(cat /mods/order); do
  insmod "/mods/$m" 2>/tmp_err || grep -q 'File exists' /tmp_err || echo "initramfs: insmod $m: $(cat /tmp_err)"
done

i=0
while [ ! -b "${kmroot:-/dev/vda}" ] && [ $i -lt 100 ]; do
  sleep 0.1
  i=$((i + 1))
done
mount -t ext4 "${kmroot:-/dev/vda}" /newroot || die "cannot mount the root image ${kmroot:-/dev/vda}"
if [ -n "$kmshare" ]; then
  mkdir -p "/newroot$kmshare"
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=mmap share "/newroot$kmshare" ||
    die "cannot mount the 9p share at $kmshare"
fi
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro kmods /newroot/lib/modules ||
  echo "initramfs: no kernel modules share (tag kmods)"

mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
init=${kminit:-$kmshare/scripts/vm/guest-init.sh}
[ -x "/newroot$init" ] || die "no guest init $init"
exec switch_root /newroot "$init"
