#!/bin/bash
# The job of the interop guest (tests/tests/interop_xl2tpd.rs; booted by scripts/vm/lib.sh
# vm_boot): sets up the guest's side of the link and then runs, one at a time, the commands
# the host test drops in the shared folder: cmd/<n>.sh -> cmd/<n>.out (stdout and stderr)
# and cmd/<n>.rc (exit status, written last, by rename). cmd/poweroff ends it.
# Arguments come from the kernel command line through the environment of guest-init.sh:
# the test's files are in this script's parent directory (net.conf: "address prefix gateway
# gateway-MAC"; agent.ready once the link is up; cmd/).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
cmd=$here/cmd
mkdir -p "$cmd"

# The NIC (no udev here loads it), and the LAC's kernel side: L2TP with PPP over it (Debian
# builds xl2tpd with USE_KERNEL), PPP itself.
for m in virtio_net l2tp_ppp l2tp_netlink ppp_generic ppp_async ppp_synctty; do
  modprobe "$m" || echo "interop-agent: modprobe $m failed"
done
# The access link: eth0 with the LAC's address. Checksums are computed in software: the LNS's
# fast path drops UDP with an unfinished (CHECKSUM_PARTIAL) checksum, as a real wire never
# carries one.
for _ in $(seq 100); do
  [ -e /sys/class/net/eth0 ] && break
  sleep 0.1
done
read -r addr prefix gw_ip gw_mac <"$here/net.conf"
ip link set eth0 up
ip addr add "$addr/$prefix" dev eth0
ethtool -K eth0 tx off >/dev/null 2>&1 || echo "interop-agent: ethtool -K eth0 tx off failed"
ip neigh replace "$gw_ip" lladdr "$gw_mac" dev eth0 nud permanent
echo "interop-agent: up: $(uname -r), $(ip -br addr show eth0)"
touch "$here/agent.ready"

while [ ! -e "$cmd/poweroff" ]; do
  for c in "$cmd"/*.sh; do
    [ -e "$c" ] || continue
    n=${c%.sh}
    bash "$c" >"$n.out" 2>&1
    echo $? >"$n.rc.tmp"
    mv "$n.rc.tmp" "$n.rc"
    rm -f "$c"
  done
  sleep 0.1
done
echo "interop-agent: poweroff"
