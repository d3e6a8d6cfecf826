// The resolved model: what `resolve` produces from a topology file; nothing in it is optional.
import type { BridgeDriver } from '../kernel/bridge.js';
import type { RouteSpec } from '../kernel/route.js';
import type { VxlanJoin } from './hosts.js';
import type { Impair } from '../kernel/tc.js';

/** One end of a veth in the model. `netns` null: the namespace nslab runs in ("host"). */
export interface EndModel {
  /** Node name (`host` for the current namespace) or, for a bridge port, the bridge name. */
  owner: string;
  netns: string | null;
  name: string;
  mtu: number | null;
  mac: string | null;
  addresses: string[];
  /** The bridge this end is a port of, when it is a bridge-side end (a Linux or an OVS bridge). */
  bridge: string | null;
  /** The VLAN tag of the port, when `bridge` is an Open vSwitch bridge and the port has one. */
  vlan: number | null;
}

/** A veth pair. */
export interface VethModel {
  a: EndModel;
  b: EndModel;
  /** What the link suffers on both ends' egress (`impair:` in the file); absent: nothing. */
  impair?: Impair;
}

/** A Linux bridge in the current namespace. */
export interface BridgeModel {
  name: string;
  driver: BridgeDriver;
  mtu: number | null;
  stp: boolean;
  addresses: string[];
}

/** An Open vSwitch bridge (found by discovery; topology files do not declare them yet). */
export interface OvsBridgeModel {
  name: string;
  /** Addresses on its internal port (the host interface of the same name). */
  addresses: string[];
  /** Its other internal ports (host interfaces), each with its VLAN tag and addresses. */
  internal: Array<{ name: string; vlan: number | null; addresses: string[] }>;
}

/** A macvlan interface of a node on a parent interface of the host (found by discovery). */
export interface MacvlanModel {
  owner: string;
  netns: string | null;
  name: string;
  mac: string | null;
  addresses: string[];
  /** The parent interface, in the host. */
  parent: string;
  /** macvlan mode (bridge, vepa, private, passthru, source). */
  mode: string;
}

/** A node: a named netns (or, for `host`, the current namespace) with its routes and sysctls. */
export interface NodeModel {
  name: string;
  netns: string | null;
  routes: RouteSpec[];
  sysctls: Array<[string, string]>;
  /** Source NAT rules (MASQUERADE, SNAT) found in its iptables nat table; empty from a file. */
  snat: SnatRule[];
  /** Its nat table's rewriting rules, one short line each (MASQUERADE, SNAT, DNAT, REDIRECT), as read from the kernel: what a graph draws on it. */
  nat?: string[];
}

/**
 * A source NAT rule as read from `iptables-save -t nat` (iptables-extensions(8): MASQUERADE, SNAT):
 * packets matching it leave with the address of their outgoing interface, or `toSource`.
 */
export interface SnatRule {
  /** `-s CIDR`, with `!` when negated; null: any source. */
  source: { cidr: string; not: boolean } | null;
  /** `-d CIDR`, with `!` when negated. */
  dest: { cidr: string; not: boolean } | null;
  /** `-o IFACE` (a trailing `+` matches a prefix), with `!` when negated. */
  out: { name: string; not: boolean } | null;
  /** SNAT --to-source; null for MASQUERADE (the outgoing interface's address). */
  toSource: string | null;
}

/** A whole topology, resolved. */
export interface Model {
  name: string;
  /** Ownership mark (`nslab:NAME`) put on every link and netns nslab creates for it. */
  mark: string;
  host: NodeModel;
  nodes: NodeModel[];
  bridges: BridgeModel[];
  veths: VethModel[];
  /** Open vSwitch bridges; their ports are veth ends whose `bridge` names them. Empty from a file. */
  ovsBridges: OvsBridgeModel[];
  /** macvlan interfaces. Empty from a file. */
  macvlans: MacvlanModel[];
  /** VXLAN joins of bridges that span hosts (a multi-host file's part for one host); optional: none. */
  vxlans?: VxlanJoin[];
  /** Multi-host: what nslab decided that the user should know (MTUs lowered for VXLAN). */
  notes?: string[];
}
