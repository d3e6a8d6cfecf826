// Open vSwitch: bridges (kernel or userspace datapath), ports with VLAN tags and nslab's external-ids.
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import type { Runner } from '../exec/runner.js';
import { cmdOp, linkKey, type Step } from './step.js';

/**
 * Whether the openvswitch kernel datapath can be used: the module is loaded, or it is in this
 * kernel's modules.dep (loadable). Where it is not, OVS bridges need `datapath_type=netdev`.
 */
export function ovsKernelDatapath(): { available: boolean; detail: string } {
  if (existsSync('/sys/module/openvswitch')) return { available: true, detail: 'openvswitch module loaded' };
  try {
    const dep = readFileSync(`/lib/modules/${release()}/modules.dep`, 'utf8');
    if (/\/openvswitch\.ko/.test(dep)) return { available: true, detail: 'openvswitch module loadable' };
  } catch {
    /* no modules.dep: a kernel without loadable modules */
  }
  return { available: false, detail: `no openvswitch module for kernel ${release()}: use the userspace datapath (datapath_type=netdev)` };
}

/** `ovs-vsctl` with a timeout, so a missing ovs-vswitchd fails instead of hanging. */
export function vsctl(...args: string[]): string[] {
  return ['ovs-vsctl', '--timeout=10', ...args];
}

/** True when ovs-vsctl answers and knows bridge `name` (`ovs-vsctl br-exists`: exit 0 yes, 2 no). */
export async function ovsBridgeExists(r: Runner, name: string): Promise<boolean | null> {
  const res = await r.run({ argv: vsctl('br-exists', name) }, { check: false }).catch(() => null);
  if (!res) return null;
  if (res.exitCode === 0) return true;
  if (res.exitCode === 2) return false;
  return null;
}

/**
 * Adds an OVS bridge, race-safe (`--may-exist`), with `datapath_type=netdev` when the kernel datapath
 * is missing (the userspace datapath needs /dev/net/tun), marked `external-ids:nslab=created`.
 * Undo: `del-br`.
 */
export function addOvsBridge(name: string, netdev: boolean): Step {
  return {
    describe: `add Open vSwitch bridge ${name}${netdev ? ' (userspace datapath)' : ''}`,
    do: cmdOp(vsctl('--may-exist', 'add-br', name, '--', 'br-set-external-id', name, 'nslab', 'created', ...(netdev ? ['--', 'set', 'bridge', name, 'datapath_type=netdev'] : []))),
    undo: [cmdOp(vsctl('--if-exists', 'del-br', name))],
    creates: `ovs:${name}`,
  };
}

/**
 * Adds PORT to an OVS bridge with an optional VLAN tag (access port), marked with external-ids
 * that name its guest and interface, so that detach and clean find it even when the guest is gone
 * (pipework#143). Undo: `del-port`.
 */
export function addOvsPort(bridge: string, port: string, tag: number | undefined, ids: Record<string, string>): Step {
  const idArgs = Object.entries(ids).map(([k, v]) => `external-ids:${k}=${v}`);
  return {
    describe: `add port ${port} to Open vSwitch bridge ${bridge}${tag !== undefined ? ` with VLAN tag ${tag}` : ''}`,
    do: cmdOp(vsctl('--may-exist', 'add-port', bridge, port, ...(tag !== undefined ? [`tag=${tag}`] : []), '--', 'set', 'interface', port, ...idArgs)),
    undo: [cmdOp(vsctl('--if-exists', 'del-port', bridge, port))],
    parent: linkKey(null, port),
  };
}

/** One OVS port row as nslab reads it. */
export interface OvsPort {
  name: string;
  bridge: string;
  tag: number | null;
  externalIds: Record<string, string>;
}

/**
 * Lists the ports of all OVS bridges with their tags and interface external-ids
 * (`ovs-vsctl --format=json` of the Port and Interface tables).
 */
export async function readOvsPorts(r: Runner): Promise<OvsPort[]> {
  // One ovs-vsctl, one database snapshot: three tables joined here (a bridge removed meanwhile by
  // someone else no longer fails a `list-ports` of it, and 100 ports are not 300 processes).
  const res = await r.run({ argv: vsctl('--format=json', '--columns=name,ports', 'list', 'Bridge', '--', '--columns=_uuid,name,tag,interfaces', 'list', 'Port', '--', '--columns=_uuid,external_ids', 'list', 'Interface') });
  const [bridges, ports, ifaces] = res.stdout.split('\n').filter((l) => l.trim()).map((l) => (JSON.parse(l) as { data: unknown[][] }).data) as [unknown[][], unknown[][], unknown[][]];
  const uuids = (v: unknown): string[] => {
    const x = v as [string, unknown];
    if (x?.[0] === 'uuid') return [x[1] as string];
    if (x?.[0] === 'set') return (x[1] as Array<[string, string]>).map((u) => u[1]);
    return [];
  };
  const ext = new Map<string, Record<string, string>>();
  for (const row of ifaces ?? []) ext.set(uuids(row[0])[0]!, Object.fromEntries(((row[1] as [string, Array<[string, string]>])?.[1] ?? [])));
  const portRow = new Map<string, unknown[]>();
  for (const row of ports ?? []) portRow.set(uuids(row[0])[0]!, row);
  const out: OvsPort[] = [];
  for (const b of bridges ?? []) {
    const rows = uuids(b[1]).map((u) => portRow.get(u)).filter((x): x is unknown[] => x !== undefined);
    rows.sort((x, y) => String(x[1]).localeCompare(String(y[1])));
    for (const row of rows) {
      const name = String(row[1]);
      if (name === b[0]) continue; // the bridge's own internal port, which list-ports leaves out too
      const tag = typeof row[2] === 'number' ? row[2] : null;
      const firstIf = uuids(row[3])[0];
      out.push({ name, bridge: String(b[0]), tag, externalIds: (firstIf && ext.get(firstIf)) || {} });
    }
  }
  return out;
}
