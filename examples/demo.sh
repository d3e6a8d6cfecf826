#!/bin/sh
# The quick-start demo, run inside `nslab sandbox`: build the 3-node star, ping across the bridge,
# show that an address nobody has does not answer, tear it all down. Exits non-zero if any check fails.
set -eu
cd "$(dirname "$0")/.."
trap 'nslab down examples/star.yaml >/dev/null' EXIT
nslab up examples/star.yaml
echo '$ ip netns exec h1 ip -br addr show eth0'
ip netns exec h1 ip -br addr show eth0
echo '$ ip netns exec h1 ping -c 2 10.0.0.2      # h1 -> h2 across bridge br0'
ip netns exec h1 ping -c 2 -i 0.2 10.0.0.2
echo '$ ip netns exec h1 ping -c 1 10.0.0.99     # nobody has .99: this one must fail'
if ip netns exec h1 ping -c 1 -W 1 10.0.0.99; then echo 'unexpected: 10.0.0.99 answered' >&2; exit 1; fi
echo 'demo: ok (both pings behaved as expected)'
