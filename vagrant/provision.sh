#!/bin/bash
# Vagrant provisioner: makes this VM an nslab host (tools, Node >= 20, nslab on PATH) and brings up its
# part of a multi-host lab: provision.sh HOSTNAME LAB. Safe to run again (`vagrant provision`): what is
# there is kept, and the lab's part is rebuilt only when `nslab verify` finds it differs.
set -euo pipefail
host=${1:?usage: provision.sh HOSTNAME LAB}
lab=${2:?usage: provision.sh HOSTNAME LAB}
tree=/opt/nslab
say() { echo "provision $host: $*"; }

[ "$(id -u)" = 0 ] || { say "needs root (Vagrant's shell provisioner runs it privileged)" >&2; exit 1; }
[ -x "$tree/bin/nslab" ] || { say "$tree/bin/nslab missing: the synced folder did not arrive (vagrant rsync)" >&2; exit 1; }
[ -f "$tree/dist/bundle/main.mjs" ] || { say "$tree/dist/bundle missing: run npm ci && npm run build on the host before vagrant up" >&2; exit 1; }

# 1. Debian packages nslab and the labs drive: only the missing ones, and only when a mirror answers
#    (a box with them baked in needs no network at all).
mapfile -t wanted < <(grep -v '^#' "$tree/vagrant/packages.txt")
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
mirror=unknown
mirror_ok() {
  if [ "$mirror" = unknown ]; then
    if timeout 90 apt-get update -qq --error-on=any >/dev/null 2>&1; then mirror=yes; else mirror=no; fi
  fi
  [ "$mirror" = yes ]
}
if [ ${#missing[@]} = 0 ]; then
  say "packages: all present"
elif mirror_ok; then
  say "packages: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "packages: ${missing[*]} missing and no apt mirror reachable; going on (nslab doctor says what fails)"
fi

# 2. Node >= 20: the VM's own, else one shipped in the tree (vendor/node, NSLAB_NODE in the
#    Vagrantfile), else the official linux build from nodejs.org when it is reachable. Debian 12's
#    nodejs package is 18, too old.
node_ok() { "$1" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null; }
vendor=$tree/vendor/node/bin/node
if command -v node >/dev/null && node_ok node; then
  say "node: $(command -v node) $(node --version)"
else
  if [ ! -f "$vendor" ] && mirror_ok; then
    case $(uname -m) in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) arch=unsupported ;; esac
    base=https://nodejs.org/dist/latest-v20.x
    command -v curl >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl ca-certificates >/dev/null
    if sums=$(curl -fsS --max-time 60 "$base/SHASUMS256.txt"); then
      line=$(printf '%s\n' "$sums" | grep -E " node-v[0-9.]+-linux-$arch\.tar\.gz$" | head -n1)
      file=${line##* }
      tmp=$(mktemp -d)
      curl -fsS --max-time 300 -o "$tmp/$file" "$base/$file"
      (cd "$tmp" && printf '%s\n' "$line" | sha256sum -c --quiet)
      mkdir -p "$tree/vendor/node"
      tar -C "$tree/vendor/node" --strip-components=1 -xzf "$tmp/$file"
      rm -rf "$tmp"
    fi
  fi
  chmod 755 "$vendor" 2>/dev/null || true
  if [ -f "$vendor" ] && node_ok "$vendor"; then
    ln -sfn "$vendor" /usr/local/bin/node
    say "node: $vendor $("$vendor" --version) (linked as /usr/local/bin/node)"
  else
    say "no node >= 20: none installed, none shipped in $tree/vendor/node/bin/node (NSLAB_NODE), nodejs.org unreachable" >&2
    exit 1
  fi
fi

# 3. nslab on PATH (sudo's secure_path has /usr/local/bin), and what this machine can do.
ln -sfn "$tree/bin/nslab" /usr/local/bin/nslab
say "nslab doctor:"
nslab doctor

# 4. This host's part of the lab (LAB "none": nslab only, no lab).
if [ "$lab" = none ]; then
  say "lab: none asked for (NSLAB_LAB=none)"
  exit 0
fi
dir=""
for d in "$tree/labs/$lab" "$tree/labs/$lab"-*; do [ -d "$d" ] && { dir=$d; break; }; done
[ -n "$dir" ] || { say "lab $lab: no such lab under $tree/labs (nslab lab ls)" >&2; exit 1; }
file=$dir/topology.yaml
if [ ! -f "$file" ]; then
  say "lab $lab: $dir has no topology.yaml (not a multi-host lab): nothing to bring up, skipped"
  exit 0
fi
if nslab verify "$file" --host "$host" >/dev/null 2>&1; then
  say "lab $lab: $host's part is already up and verifies"
else
  # Whatever is there of it differs (a half-made or edited lab): take nslab's objects down, build anew.
  nslab down "$file" --host "$host" >/dev/null
  nslab up "$file" --host "$host"
  say "lab $lab: $host's part is up"
fi
