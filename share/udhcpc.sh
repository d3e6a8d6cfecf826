#!/bin/sh
# busybox udhcpc hook used by nslab: applies a lease to the interface (address, default route via the
# first router, DNS into /etc/netns/NETNS/resolv.conf when the netns has a name), and removes it on deconfig.
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set dev "$interface" up
    ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" ${broadcast:+broadcast "$broadcast"} dev "$interface"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
    # This shell's PID as /proc sees it ($$ is the one of udhcpc's PID namespace, a container's).
    read -r me _ < /proc/self/stat
    ns=$(ip netns identify "$me" 2>/dev/null)
    if [ -n "$ns" ] && [ -n "$dns" ] && [ -d "/etc/netns/$ns" ]; then
      : > "/etc/netns/$ns/resolv.conf"
      for d in $dns; do echo "nameserver $d" >> "/etc/netns/$ns/resolv.conf"; done
    fi
    ;;
esac
exit 0
