#!/usr/bin/env bash
# Sets a fresh Debian 12 machine up for nslab, as root: system packages, npm dependencies, build.
# Safe to run again: apt and npm skip what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# What nslab drives (iproute2, brctl, iptables, ping, sysctl, nsenter/unshare, OVS, dnsmasq, docker)
# and what its labs and tests use; fping makes pingall one process per node instead of one per probe;
# graphviz draws `graph --format svg` and the page of `nslab ui`; tcpdump is `nslab capture`; chromium
# (headless, driven by the npm dev dependency playwright-core) tests that page; the CNI plugin's tests
# run Debian's reference plugins beside nslab-cni (containernetworking-plugins) and containers under
# podman (CNI backend; runc, conmon come with it), and fetch a published port with curl; `npm run bench`
# measures nslab against a one-process setns + rtnetlink floor (python3-pyroute2, scripts/bench-floor.py)
# and peak RSS with GNU time.
PKGS=(iproute2 bridge-utils iptables iputils-ping iputils-arping procps util-linux ethtool busybox-static openvswitch-switch dnsmasq-base docker.io net-tools iperf3 fping graphviz tcpdump chromium containernetworking-plugins podman curl python3-pyroute2 time)
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
