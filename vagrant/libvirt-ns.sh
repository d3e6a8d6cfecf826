#!/bin/bash
# The self-test's private namespace (started by selftest.sh under `unshare --net --mount --pid` with
# `tini -s` as PID 1): private /run and libvirt state, then virtlogd and libvirtd, kept alive for a
# bounded time. Nothing here touches the host's network, mounts or libvirt configuration.
# libvirt-ns.sh STATEDIR (holds etc/ var/ cache/ log/ copies; `ready` is written there when libvirtd answers)
set -eu
state=${1:?usage: libvirt-ns.sh STATEDIR}
mount --make-rprivate /
mount -t sysfs sysfs /sys   # /sys/class/net must list this netns' links (libvirt reads it)
mount -t tmpfs -o mode=755 nslab-vagrant-run /run
mkdir -p /run/libvirt /run/lock /run/user
# vagrant-libvirt writes pool, network and domain XML under /etc/libvirt, and libvirt keeps its state
# and images under /var: private copies, gone with this mount namespace.
mount --bind "$state/etc" /etc/libvirt
mount --bind "$state/var" /var/lib/libvirt
mount --bind "$state/cache" /var/cache/libvirt
mount --bind "$state/log" /var/log/libvirt
ip link set lo up
virtlogd -d
libvirtd -d
for _ in $(seq 1 60); do virsh -c qemu:///system version >/dev/null 2>&1 && break; sleep 0.5; done
virsh -c qemu:///system version
touch "$state/ready"
# Bounded: if selftest.sh is killed before its teardown, PID 1 (tini) exits when this does, and the
# kernel then kills everything left in the pid namespace, VMs included.
exec sleep "${NSLAB_NS_LIFETIME:-3600}"
