#!/usr/bin/env bash
# Runs every test tier and ends with one line "tests: N passed, N failed".
#   unit          plan/argv/validation with the recording runner: no root, no kernel changes
#   integration   real netns, veths, bridges, routes and pings, inside a private sandbox (nslab sandbox),
#                 rollback injected at every step, the CLI as a user runs it
#   faults        each command SIGKILLed at every step and at random moments, then `nslab clean`:
#                 the sandbox must read byte for byte as before (prints its figures)
#   rootless      test/rootless/run.sh: a test user (no root) runs nslab sandbox, every command family in it
#                 and every lab (or its one-line "needs root here"), and the host reads as before
#   vagrant       vagrant/selftest.sh: two real Debian 12 VMs (libvirt, TCG) from a box built here,
#                 lab 15 across them verified by vagrant/verify.sh, a broken address caught, nothing left
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export NODE_OPTIONS=--experimental-vm-modules

npm run --silent build || { echo "tests: 0 passed, 1 failed (build)"; exit 1; }

npx jest --selectProjects unit --json --outputFile="$out/unit.json"
unit=$?
# The integration tier runs in its own sandbox: nothing it makes can reach the host's network.
node dist/bundle/main.mjs sandbox -- npx jest --selectProjects integration --runInBand --json --outputFile="$out/integration.json"
integ=$?
# The fault suite, in a sandbox of its own: its baseline is a fresh namespace.
t0=$SECONDS
node dist/bundle/main.mjs sandbox -- npx jest --selectProjects faults --runInBand --json --outputFile="$out/faults.json"
faults=$?
echo "fault suite: $((SECONDS - t0)) s"
# Without root: an ordinary user (made by the tier) runs the sandbox, every command family and every lab.
t0=$SECONDS
bash test/rootless/run.sh 2>&1 | tee "$out/rootless.log"
rootless=${PIPESTATUS[0]}
echo "rootless tier: $((SECONDS - t0)) s"
# The VMs: own apt installs, a cached box, libvirtd in a namespace of its own; its one result line.
t0=$SECONDS
bash vagrant/selftest.sh 2>&1 | tee "$out/vagrant.log"
vagrant=${PIPESTATUS[0]}
echo "vagrant self-test: $((SECONDS - t0)) s"

node -e '
const fs = require("fs");
let p = 0, f = 0;
for (const t of process.argv.slice(1)) {
  if (t.endsWith(".log")) {
    const m = /(?:vagrant selftest|rootless): (\d+) passed, (\d+) failed/.exec(fs.existsSync(t) ? fs.readFileSync(t, "utf8") : "");
    if (m) { p += Number(m[1]); f += Number(m[2]); } else { f += 1; console.log(`no result from ${t}`); }
    continue;
  }
  try { const r = JSON.parse(fs.readFileSync(t, "utf8")); p += r.numPassedTests; f += r.numFailedTests + r.numRuntimeErrorTestSuites; }
  catch { f += 1; console.log(`no report from ${t}: the tier did not run`); }
}
console.log(`tests: ${p} passed, ${f} failed`);
' "$out/unit.json" "$out/integration.json" "$out/faults.json" "$out/rootless.log" "$out/vagrant.log"
[ "$unit" -eq 0 ] && [ "$integ" -eq 0 ] && [ "$faults" -eq 0 ] && [ "$rootless" -eq 0 ] && [ "$vagrant" -eq 0 ]
