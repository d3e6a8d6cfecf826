#!/bin/bash
# Checks a multi-host lab in the Vagrant VMs: `nslab verify --host` and `nslab pingall --host` in each VM
# (through `vagrant ssh`), reported as one table across hosts, or --json, or --junit (a testsuite per VM).
# vagrant/verify.sh [--json|--junit] [VM ...]   (default VMs: vm1..vm$NSLAB_VMS; lab: $NSLAB_LAB, 15)
# Exit 0 when every check passes, 1 when one fails (the row names the VM, node and interface), 2 on bad input.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
format=table
vms=()
for a in "$@"; do
  case $a in
    --json) format=json ;;
    --junit) format=junit ;;
    --table) format=table ;;
    -h|--help) sed -n '2,5s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) echo "verify.sh: unknown option $a (expected --json, --junit or VM names)" >&2; exit 2 ;;
    *) vms+=("$a") ;;
  esac
done
[ ${#vms[@]} -gt 0 ] || for i in $(seq 1 "${NSLAB_VMS:-2}"); do vms+=("vm$i"); done

lab=${NSLAB_LAB:-15}
dir=""
for d in "$here/../labs/$lab" "$here/../labs/$lab"-*; do [ -d "$d" ] && { dir=$(basename "$d"); break; }; done
[ -n "$dir" ] || { echo "verify.sh: NSLAB_LAB=$lab: no such lab under labs/ (nslab lab ls)" >&2; exit 2; }
[ -f "$here/../labs/$dir/topology.yaml" ] || { echo "verify.sh: labs/$dir has no topology.yaml: not a multi-host lab" >&2; exit 2; }
file=/opt/nslab/labs/$dir/topology.yaml

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$here"
inputs=()
for vm in "${vms[@]}"; do
  case $vm in *[!A-Za-z0-9_.-]*) echo "verify.sh: bad VM name '$vm'" >&2; exit 2 ;; esac
  # One ssh session per VM, all at once; the markers split its output into the two JSON reports.
  vagrant ssh "$vm" -c "echo @@nslab verify; sudo nslab verify $file --host $vm --json; echo @@nslab pingall; sudo nslab pingall $file --host $vm --json; echo @@nslab end" \
    > "$out/$vm" 2> "$out/$vm.err" < /dev/null &
  inputs+=("$vm=$out/$vm")
done
wait
node "$here/report.mjs" "$format" "${inputs[@]}"
