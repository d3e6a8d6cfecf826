#!/usr/bin/env bash
# Runs podman 4.3 (rootful, network_backend = "cni", vfs, cgroupfs) with a CNI network whose first
# plugin is nslab-cni, inside the test's sandbox (see ../shared/recipes/recipes.sh, recipe podman-cni).
# Called by test/integration/cni.test.ts as
#     unshare --mount --propagation private -- bash podman-cni.sh DIR CONFLIST ROOT
# DIR: a temp dir for all of podman's state; CONFLIST: the network configuration file (the README's);
# ROOT: nslab's checkout (bin/nslab-cni, bin/nslab). Prints `KEY VALUE` lines the test asserts on;
# removes containers, image and cgroups whatever happens (EXIT trap). Overlays on /run and /var/lib
# keep what podman writes there whatever its flags say (/run/runc, /var/lib/cni) off the sandbox.
set -u
D=$1 CONFLIST=$2 ROOT=$3
CG=nslab-cni-test-$$
cleanup() {
  timeout 60 podman rm -f -t 0 np1 np2 >/dev/null 2>&1
  timeout 30 podman rmi -a -f >/dev/null 2>&1
  for _ in $(seq 60); do
    ls -d /sys/fs/cgroup/*/"$CG" >/dev/null 2>&1 || break
    find /sys/fs/cgroup/*/"$CG" -depth -type d -exec rmdir {} \; 2>/dev/null
    sleep 0.1
  done
}
trap cleanup EXIT
say() { echo "$*"; }
overlay_on() {
  local dir=$1 n; n=$(echo "$dir" | tr / _)
  mkdir -p "$D/ovl/$n-up" "$D/ovl/$n-wk"
  mount -t overlay overlay -o "lowerdir=$dir,upperdir=$D/ovl/$n-up,workdir=$D/ovl/$n-wk" "$dir"
}
mount --make-rprivate /
overlay_on /run || { say "FAIL overlay /run"; exit 1; }
overlay_on /var/lib || { say "FAIL overlay /var/lib"; exit 1; }
# The sandbox's own /run/netns and /run/nslab are hidden by the overlay (it shows the host's folders):
# fresh ones for podman's netns and nslab's state in this mount namespace.
mkdir -p /run/netns /run/nslab
mount -t tmpfs nslab-cni-netns /run/netns && mount -t tmpfs nslab-cni-state /run/nslab || { say "FAIL tmpfs"; exit 1; }
mkdir -p "$D/cni" "$D/cnibin" "$D/t" "$D/storage" "$D/run" "$D/home" "$D/rootfs/bin" "$D/rootfs/www" "$D/rootfs/etc" "$D/rootfs/tmp" "$D/rootfs/proc" "$D/rootfs/sys" "$D/rootfs/dev"
export HOME=$D/home XDG_CONFIG_HOME=$D/home/.config XDG_DATA_HOME=$D/home/.local/share TMPDIR=$D/t
ln -s "$ROOT/bin/nslab-cni" "$D/cnibin/nslab-cni"
cp "$CONFLIST" "$D/cni/"
nofile=$(ulimit -Hn); nproc=$(ulimit -Hu); pidmax=$(cat /proc/sys/kernel/pid_max)
[ "$nofile" = unlimited ] && nofile=1048576
{ [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pidmax" ]; } && nproc=$pidmax
cat >"$D/containers.conf" <<EOF
[containers]
netns = "bridge"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[network]
network_backend = "cni"
cni_plugin_dirs = ["$D/cnibin", "/usr/lib/cni"]
network_config_dir = "$D/cni"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$D/events.log"
runtime = "runc"
tmp_dir = "$D/t"
image_copy_tmp_dir = "$D/t"
EOF
cat >"$D/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$D/storage"
runroot = "$D/run"
EOF
export CONTAINERS_CONF=$D/containers.conf CONTAINERS_STORAGE_CONF=$D/storage.conf
net=$(sed -n 's/^ *"name": *"\([^"]*\)".*/\1/p' "$CONFLIST" | head -1)
say "NETWORK $net"
say "BACKEND $(podman info -f '{{.Host.NetworkBackend}}' 2>&1)"
cp "$(command -v busybox)" "$D/rootfs/bin/busybox"
for a in $(busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$D/rootfs/bin/$a"; done
echo hello-from-np1 >"$D/rootfs/www/index.html"
tar -C "$D/rootfs" -cf "$D/rootfs.tar" .
podman import "$D/rootfs.tar" localhost/nslab-cni-busybox:1 >/dev/null 2>"$D/import.err" || { say "FAIL import $(tail -1 "$D/import.err")"; exit 1; }
podman run -d --name np1 --network "$net" -p 8080:80 --cgroup-parent="/$CG" localhost/nslab-cni-busybox:1 /bin/httpd -f -p 80 -h /www >/dev/null 2>"$D/run1.err" || { say "FAIL run np1 $(tail -3 "$D/run1.err" | tr '\n' ' ')"; exit 1; }
podman run -d --name np2 --network "$net" --cgroup-parent="/$CG" localhost/nslab-cni-busybox:1 /bin/sleep 600 >/dev/null 2>"$D/run2.err" || { say "FAIL run np2 $(tail -3 "$D/run2.err" | tr '\n' ' ')"; exit 1; }
ip1=$(podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' np1)
ip2=$(podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' np2)
gw=$(podman inspect -f '{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}' np1)
say "IP1 $ip1"
say "IP2 $ip2"
say "GW $gw"
if podman exec np1 ping -c 2 -W 1 "$ip2" >/dev/null 2>&1; then say "PING12 ok"; else say "PING12 fail"; fi
if podman exec np2 ping -c 2 -W 1 "$ip1" >/dev/null 2>&1; then say "PING21 ok"; else say "PING21 fail"; fi
body=""
for _ in $(seq 30); do body=$(curl -s --max-time 2 "http://$gw:8080/"); [ -n "$body" ] && break; sleep 0.1; done
say "PUBLISHED $body"
# What nslab sees while the containers run: their attachments, under their CNI names.
say "INSPECT $("$ROOT/bin/nslab" inspect --wide 2>&1 | grep -o 'attach cni:[0-9a-f]*' | sort -u | wc -l)"
say "HOSTENDS $(ip -o link show | grep -c 'nslab:attach guest=cni:')"
# verify attachments: both as podman's CNI cache (libcni's /var/lib/cni/results) says, then one broken.
summary='const r = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log(r.ok, r.attachments.length, r.attachments.filter((a) => a.sources.some((s) => s.startsWith("CNI cache"))).length)'
say "VERIFY $("$ROOT/bin/nslab" verify attachments --json | node -e "$summary")"
ns2=$(podman inspect -f '{{.NetworkSettings.SandboxKey}}' np2)
id2=$(podman inspect -f '{{.Id}}' np2)
nsenter --net="$ns2" ip route del default
out=$("$ROOT/bin/nslab" verify attachments "$id2"); rc=$?
say "VERIFY_BROKEN $rc $(echo "$out" | sed "s/$id2/ID2/; s|${ns2#/run/netns/}|NS2|")"
podman rm -f -t 0 np1 np2 >/dev/null 2>&1
say "AFTER_RM_LINKS $(ip -o link show | grep -c 'nslab:')"
say "AFTER_RM_NAT $(iptables-save -t nat | grep -c 'nslab:cni=')"
say "AFTER_RM_STATE $(find /run/nslab -mindepth 1 | wc -l)"
say "AFTER_RM_IPAM $(find /var/lib/cni/networks/"$net" -name '10.*' 2>/dev/null | wc -l)"
say "DONE"
