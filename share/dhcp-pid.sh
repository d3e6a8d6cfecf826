#!/bin/sh
# The pid files of nslab's DHCP clients (busybox udhcpc):
#   dhcp-pid.sh stop PIDFILE         stop the client the file names, only if it is that very client
#                                    (a re-attach must not start a second one on the same file), and
#                                    remove the file
#   dhcp-pid.sh host PIDFILE PID     the client ran inside the PID namespace of process PID (a Docker
#                                    container's, so the kernel ends it with the container) and wrote
#                                    its PID as seen there: rewrite the file with the PID seen here
set -u
case "${1:-}" in
stop)
  f=$2
  [ -r "$f" ] || exit 0
  read -r p < "$f" || p=
  case "$p" in
    '' | *[!0-9]*) ;;
    *) if tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q -e "udhcpc .*-p $f "; then kill "$p" 2>/dev/null; fi ;;
  esac
  rm -f "$f"
  ;;
host)
  f=$2 c=$3
  ns=$(readlink "/proc/$c/ns/pid") || exit 1
  # udhcpc writes the file once it went to the background, a moment after the command returned.
  i=0
  while [ $i -lt 100 ]; do
    k=
    [ -r "$f" ] && read -r k < "$f"
    if [ -n "$k" ]; then
      for d in /proc/[0-9]*; do
        [ "$(readlink "$d/ns/pid" 2>/dev/null)" = "$ns" ] || continue
        # NSpid: the PID in each namespace from this /proc's down to the process's own (the last field).
        last=$(sed -n 's/^NSpid:.*[[:space:]]\([0-9][0-9]*\)$/\1/p' "$d/status" 2>/dev/null)
        if [ "$last" = "$k" ] && grep -q udhcpc "$d/cmdline" 2>/dev/null; then echo "${d#/proc/}" > "$f"; exit 0; fi
      done
    fi
    i=$((i + 1))
    sleep 0.05
  done
  echo "no DHCP client ${k:-(no PID in $f)} in the PID namespace of process $c" >&2
  exit 1
  ;;
*)
  echo "usage: dhcp-pid.sh stop PIDFILE | host PIDFILE PID" >&2
  exit 2
  ;;
esac
