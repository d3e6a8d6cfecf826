// The resolved model: what `resolve` produces from a topology file; nothing in it is optional.
import type { BridgeDriver } from '../kernel/bridge.js';
import type { RouteSpec } from '../kernel/route.js';

/** One end of a veth in the model. `netns` null: the namespace nslab runs in ("host"). */
export interface EndModel {
  /** Node name (`host` for the current namespace) or, for a bridge port, the bridge name. */
  owner: string;
  netns: string | null;
  name: string;
  mtu: number | null;
  mac: string | null;
  addresses: string[];
  /** The bridge this end is a port of, when it is a bridge-side end. */
  bridge: string | null;
}

/** A veth pair. */
export interface VethModel {
  a: EndModel;
  b: EndModel;
}

/** A Linux bridge in the current namespace. */
export interface BridgeModel {
  name: string;
  driver: BridgeDriver;
  mtu: number | null;
  stp: boolean;
  addresses: string[];
}

/** A node: a named netns (or, for `host`, the current namespace) with its routes and sysctls. */
export interface NodeModel {
  name: string;
  netns: string | null;
  routes: RouteSpec[];
  sysctls: Array<[string, string]>;
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
}
