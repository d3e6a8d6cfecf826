#!/usr/bin/env bash
# The rootless tier: nslab as an ordinary user (a test user made here), through `nslab sandbox`'s user
# namespace: every command family in a sandbox, every lab of labs/ (or its one-line "needs ..."), the
# one-line refusal outside a sandbox, and nothing changed on the host. Ends with one line:
#   rootless: N passed, M failed
set -uo pipefail
cd "$(dirname "$0")/../.."
user=nslabtest
made_user=
if ! id "$user" >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin "$user" || { echo "rootless: 0 passed, 1 failed (useradd)"; exit 1; }
  made_user=1
fi
pass=0 fail=0
ok() { echo "  ok   $1"; pass=$((pass + 1)); }
no() { echo "  FAIL $1"; fail=$((fail + 1)); }
# The user must read the build: a clone under a private home is copied to a readable temp dir.
root=$PWD tmp=
if ! runuser -u "$user" -- test -r "$root/dist/bundle/main.mjs" -a -x "$root/bin/nslab"; then
  tmp=$(mktemp -d /tmp/nslab-rootless.XXXXXX); chmod 755 "$tmp"
  cp -a bin dist share labs examples test package.json node_modules "$tmp"/
  root=$tmp
fi
as() { runuser -u "$user" -- env HOME=/tmp PATH="$root/bin:$PATH" "$@"; }
host_state() { ip netns list; ip -o link | sed 's/^[0-9]*: //' | cut -d' ' -f1-2 | sort; iptables-save 2>/dev/null | grep -v '^#'; }
before=$(host_state)
t0=$SECONDS

# Outside a sandbox: one line, with the way that works.
out=$(as "$root/bin/nslab" up "$root/examples/star.yaml" 2>&1); rc=$?
if [ $rc -ne 0 ] && echo "$out" | head -1 | grep -q 'needs root' && echo "$out" | grep -q 'nslab sandbox'; then ok "outside a sandbox: refused with the sandbox hint"; else no "outside a sandbox: rc=$rc: $out"; fi

# Every command family, in one sandbox.
while read -r st name; do
  case $st in ok) ok "sandbox: $name" ;; FAIL) no "sandbox: $name" ;; esac
done < <(as "$root/bin/nslab" sandbox -- sh "$root/test/rootless/commands.sh" 2>&1)

# Every lab: passes, or says in one line what a user namespace cannot give here.
for dir in "$root"/labs/[0-9][0-9]-*/; do
  id=$(basename "$dir" | cut -c1-2)
  out=$(as "$root/bin/nslab" lab run "$id" 2>&1); rc=$?
  if [ $rc -eq 0 ]; then ok "lab $id"
  elif echo "$out" | grep -q "^nslab: lab $id needs\|^nslab: lab $id runs"; then ok "lab $id: root only here ($(echo "$out" | head -1 | cut -c8-120)...)"
  else no "lab $id (rc=$rc): $(echo "$out" | grep -E '✗|nslab:' | head -3)"; fi
done

after=$(host_state)
if [ "$before" = "$after" ]; then ok "host unchanged (netns, links, iptables)"; else no "host changed: $(diff <(echo "$before") <(echo "$after") | head -5)"; fi
left=$(pgrep -u "$user" | wc -l)
if [ "$left" -eq 0 ]; then ok "no process of $user left"; else no "$left processes of $user left"; pkill -9 -u "$user"; fi
[ -n "$tmp" ] && rm -rf "$tmp"
[ -n "$made_user" ] && userdel "$user"
echo "rootless tier: $((SECONDS - t0)) s"
echo "rootless: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
