#!/usr/bin/python3
# The one-process floor of `nslab up` for `npm run bench` (src/bench/scale.ts): one Python process
# makes every netns itself (unshare + bind mount, as `ip netns add` does, without a process per netns),
# enters each with setns and speaks rtnetlink there (python3-pyroute2), making the same kernel objects
# as nslab (netns, bridges, veths with their ends created straight in their netns, ports, addresses,
# links up, the ownership aliases). No shell, no `ip`: what is left is the kernel's own work.
#   bench-floor.py FILE.json     FILE: {"bridges": [{"name", "addresses": [...]}],
#                                      "veths": [{"a": END, "b": END}], "netns": [names], "mark": str}
#                                END: {"netns": name|null, "name", "addresses": [...], "bridge": name|null}
import ctypes, json, os, sys
from pyroute2 import IPRoute

CLONE_NEWNET = 0x40000000
MS_BIND = 4096
libc = ctypes.CDLL(None, use_errno=True)

def check(rc, what):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f'{what}: {os.strerror(e)}')

spec = json.load(open(sys.argv[1]))
home = os.open('/proc/self/ns/net', os.O_RDONLY)
os.makedirs('/run/netns', exist_ok=True)

def enter(fd):
    check(libc.setns(fd, CLONE_NEWNET), 'setns')

# netns: a new one per name, bind-mounted at /run/netns/NAME (ip-netns(8) does the same).
for name in spec['netns']:
    path = f'/run/netns/{name}'
    open(path, 'w').close()
    check(libc.unshare(CLONE_NEWNET), 'unshare')
    check(libc.mount(b'/proc/thread-self/ns/net', path.encode(), b'none', MS_BIND, None), f'mount {path}')
    enter(home)

def plen(cidr):
    ip, n = cidr.split('/')
    return ip, int(n)

ipr = IPRoute()
for b in spec['bridges']:
    ipr.link('add', ifname=b['name'], kind='bridge')
    idx = ipr.link_lookup(ifname=b['name'])[0]
    ipr.link('set', index=idx, ifalias=spec['mark'])
    for a in b['addresses']:
        ip, n = plen(a)
        ipr.addr('add', index=idx, address=ip, prefixlen=n)
    ipr.link('set', index=idx, state='up')
bridge_idx = {b['name']: ipr.link_lookup(ifname=b['name'])[0] for b in spec['bridges']}

# veths: each end made in its netns at once (IFLA_NET_NS_FD), the current namespace's end marked, on
# its bridge, up.
fds = {name: os.open(f'/run/netns/{name}', os.O_RDONLY) for name in spec['netns']}
per_ns = {}
for v in spec['veths']:
    a, b = v['a'], v['b']
    if a['netns'] is not None and b['netns'] is None:
        a, b = b, a
    peer = {'ifname': b['name']}
    if b['netns'] is not None:
        peer['net_ns_fd'] = fds[b['netns']]
    kw = {'ifname': a['name'], 'kind': 'veth', 'peer': peer}
    if a['netns'] is not None:
        kw['net_ns_fd'] = fds[a['netns']]
    ipr.link('add', **kw)
    for e in (a, b):
        if e['netns'] is None:
            idx = ipr.link_lookup(ifname=e['name'])[0]
            ipr.link('set', index=idx, ifalias=spec['mark'])
            if e['bridge']:
                ipr.link('set', index=idx, master=bridge_idx[e['bridge']])
            for ad in e['addresses']:
                ip, n = plen(ad)
                ipr.addr('add', index=idx, address=ip, prefixlen=n)
            ipr.link('set', index=idx, state='up')
        else:
            per_ns.setdefault(e['netns'], []).append(e)
ipr.close()

# inside each netns: mark lo, lo up, addresses, interfaces up.
for name in spec['netns']:
    enter(fds[name])
    with IPRoute() as ns:
        lo = ns.link_lookup(ifname='lo')[0]
        ns.link('set', index=lo, ifalias=spec['mark'])
        ns.link('set', index=lo, state='up')
        for e in per_ns.get(name, []):
            idx = ns.link_lookup(ifname=e['name'])[0]
            for ad in e['addresses']:
                ip, n = plen(ad)
                ns.addr('add', index=idx, address=ip, prefixlen=n)
            ns.link('set', index=idx, state='up')
    enter(home)
