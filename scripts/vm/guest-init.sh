#!/bin/bash
# PID 1 of a scripts/vm guest (exec'd by the initramfs after switch_root): mounts what a test
# machine has (bpffs, tmpfs /run and /tmp, devpts, cgroup2), loads the modules the lab uses,
# runs the job given on the kernel command line (kmjob=, a script under the shared folder) with
# its output on the console and in kmout=/job.log, writes kmout=/job.status, powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb

for w in $(cat /proc/cmdline); do
  case "$w" in
  km*=*) declare "${w%%=*}=${w#*=}" ;;
  esac
done

kmout=${kmout:-/tmp/kmatrix-out}

poweroff_now() {
  sync
  [ -n "${kmshare:-}" ] && umount "$kmshare" 2>/dev/null
  echo o >/proc/sysrq-trigger
  sleep 30
}
trap poweroff_now EXIT

mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /dev/pts /dev/shm /run/netns /sys/fs/bpf
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
hostname kmatrix
ip link set lo up
ulimit -l unlimited
ulimit -n 65536
for m in veth af_packet 9p; do modprobe -q "$m" 2>/dev/null; done

echo "KMATRIX-GUEST-UP $(uname -r) job=${kmjob:-none}"
status=0
if [ -n "${kmjob:-}" ]; then
  mkdir -p "$kmout"
  bash "$kmjob" 2>&1 | tee "$kmout/job.log" >/dev/console
  status=${PIPESTATUS[0]}
fi
echo "$status" >"$kmout/job.status"
echo "KMATRIX-JOB-DONE status=$status"
