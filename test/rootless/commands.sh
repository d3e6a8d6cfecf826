#!/bin/sh
# Run by test/rootless/run.sh as a non-root user, inside `nslab sandbox`: every command family once.
# One line "ok NAME" or "FAIL NAME" per check.
cd "$(dirname "$0")/../.." || exit 1
t() { name=$1; shift; if "$@" >/tmp/nslab-rootless.$$ 2>&1; then echo "ok $name"; else echo "FAIL $name: $(tail -1 /tmp/nslab-rootless.$$)"; fi; }
[ "$(id -u)" = 0 ] && [ "${NSLAB_ROOTLESS:-}" = 1 ] && echo "ok user namespace root" || echo "FAIL user namespace root: uid $(id -u), NSLAB_ROOTLESS=${NSLAB_ROOTLESS:-}"
t up nslab up examples/star.yaml
t verify nslab verify examples/star.yaml
t pingall nslab pingall examples/star.yaml
t graph nslab graph examples/star.yaml --format dot
t plan nslab plan examples/star.yaml
t down nslab down examples/star.yaml
ip netns add g1 && ip netns add g2
t attach nslab attach g1 --to br0 --ip 10.0.0.1/24
t pipework nslab pipework br0 g2 10.0.0.2/24
t ping-attached ip netns exec g1 ping -c1 -W1 10.0.0.2
t detach sh -c 'nslab detach g1 eth1 && nslab detach g2 eth1'
ip netns del g1; ip netns del g2
t network-create nslab network create --subnet 172.30.0.0/24 n1
t node-run sh -c 'nslab node run --network n1 w1 && nslab node run --network n1 w2'
t node-ping-by-name nslab node exec w1 -- ping -c1 -W1 w2
t node-rm nslab node rm w1 w2
t network-rm nslab network rm n1
t lab-up-down sh -c 'nslab lab up 07 && nslab lab verify 07 && nslab lab down 07'
t inspect-empty sh -c 'nslab inspect | grep -q "owns nothing"'
t clean nslab clean
rm -f /tmp/nslab-rootless.$$
