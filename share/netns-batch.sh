#!/bin/sh
# How nslab's runner (src/exec/runner.ts) runs `ip -batch` inside network namespaces with as few
# processes as it can: a process costs 1-2 ms here, and attaching many guests is mostly processes.
# Fixed code: every value arrives as an argument or on stdin; nothing is evaluated.
#
#   netns-batch.sh in 'KEY=VALUE ...'
#       Already inside the netns: for each pair, writes VALUE to /proc/sys/KEY (a sysctl, KEY in
#       slash form such as net/ipv4/conf/eth1/arp_notify, as sysctl(8) also accepts it), then becomes
#       `ip -batch -` on this stdin. A sysctl that cannot be written: a message, exit 3.
#   netns-batch.sh each NETNS FILE 'KEY=VALUE ...' [NETNS FILE '...' ...]
#       In turn, for each job: enters NETNS (a path, /run/netns/NAME or /proc/PID/ns/net) and does
#       `in` there with FILE as stdin; after each job one stderr line `nslab-job-end EXIT`.
#   netns-batch.sh addrs NETNS [NETNS ...]
#       For each NETNS (a path) in turn: `ip -j addr show` there on stdout (`[]` when it cannot be
#       entered), then a line `nslab-job-end`. One process for many reads (attach's address check).
#   netns-batch.sh query FILE GLOBAL NETNS [NETNS ...]
#       For each NETNS (a path) in turn: `ip -j GLOBAL -batch FILE` there (FILE: read-only queries,
#       one a line; GLOBAL: global options such as -d, or ''), its output on stdout, then a stdout line
#       `nslab-job-end` and a stderr line `nslab-job-end EXIT`. One process for reading many netns (verify).
# IP, when set, is the path of iproute2's ip.
set -f
case $1 in
in)
  for kv in $2; do
    key=${kv%%=*}
    if ! { printf '%s\n' "${kv#*=}" > "/proc/sys/$key"; } 2>/dev/null; then
      echo "cannot set sysctl $key: no writable /proc/sys/$key in this netns" >&2
      exit 3
    fi
  done
  exec "${IP:-ip}" -batch - ;;
each)
  shift
  # busybox (static) enters a netns and starts a shell in half the time util-linux nsenter and dash
  # take here (1.0 against 1.9 ms a job), so it is used when installed. Its nsenter and sh run
  # busybox's own applet for a bare `ip`: iproute2's ip goes by its path.
  if ! IP=$(command -v ip); then
    echo "netns-batch.sh: ip (iproute2) is not installed" >&2
    exit 127
  fi
  export IP
  if command -v busybox >/dev/null 2>&1; then enter='busybox nsenter' shell='busybox sh'; else enter=nsenter shell=sh; fi
  while [ $# -ge 3 ]; do
    $enter --net="$1" $shell "$0" in "$3" < "$2"
    echo "nslab-job-end $?" >&2
    shift 3
  done ;;
addrs)
  shift
  if ! IP=$(command -v ip); then
    echo "netns-batch.sh: ip (iproute2) is not installed" >&2
    exit 127
  fi
  if command -v busybox >/dev/null 2>&1; then enter='busybox nsenter'; else enter=nsenter; fi
  for ns in "$@"; do
    $enter --net="$ns" "$IP" -j addr show 2>/dev/null || echo '[]'
    echo nslab-job-end
  done ;;
query)
  file=$2 global=$3
  shift 3
  if ! IP=$(command -v ip); then
    echo "netns-batch.sh: ip (iproute2) is not installed" >&2
    exit 127
  fi
  if command -v busybox >/dev/null 2>&1; then enter='busybox nsenter'; else enter=nsenter; fi
  for ns in "$@"; do
    $enter --net="$ns" "$IP" -j $global -batch "$file"
    rc=$?
    echo nslab-job-end
    echo "nslab-job-end $rc" >&2
  done ;;
*)
  echo "usage: $0 in 'KEY=VALUE ...' | each NETNS FILE 'KEY=VALUE ...' ... | addrs NETNS ... | query FILE GLOBAL NETNS ..." >&2
  exit 2 ;;
esac
