// Linux bridges, with iproute2 (`ip link ... type bridge`) or bridge-utils (`brctl`) as asked.
import { cmdOp, ipOp, linkKey, type Step } from './step.js';
import { delLinkOp } from './link.js';

/** Which tool manages the bridge: iproute2 (default) or bridge-utils' brctl, as the notes use. */
export type BridgeDriver = 'iproute2' | 'brctl';

/** Options of a new bridge. MTU in bytes; `stp` turns on the spanning tree protocol. */
export interface BridgeOptions {
  driver: BridgeDriver;
  mtu?: number;
  stp?: boolean;
}

/**
 * Adds a bridge in the current namespace. iproute2: `ip link add name BR [mtu M] type bridge
 * [stp_state 1]`; brctl: `brctl addbr BR` (its MTU and STP follow in separate steps, see
 * {@link bridgeSettings}). Undo: `ip link del` (brctl's `delbr` refuses a bridge that is up).
 */
export function addBridge(name: string, o: BridgeOptions): Step {
  const base = { describe: `add bridge ${name}`, undo: [delLinkOp(null, name)], creates: linkKey(null, name) };
  if (o.driver === 'brctl') return { ...base, do: cmdOp(['brctl', 'addbr', name]) };
  return {
    ...base,
    do: ipOp(null, ['link', 'add', 'name', name, ...(o.mtu ? ['mtu', String(o.mtu)] : []), 'type', 'bridge', ...(o.stp ? ['stp_state', '1'] : [])]),
  };
}

/** The steps brctl needs after `addbr` for the options iproute2 takes at creation. */
export function bridgeSettings(name: string, o: BridgeOptions): Step[] {
  if (o.driver !== 'brctl') return [];
  const steps: Step[] = [];
  if (o.mtu) steps.push({ describe: `set MTU of ${name} to ${o.mtu}`, do: ipOp(null, ['link', 'set', 'dev', name, 'mtu', String(o.mtu)]), undo: [], parent: linkKey(null, name) });
  if (o.stp) steps.push({ describe: `turn on STP on ${name}`, do: cmdOp(['brctl', 'stp', name, 'on']), undo: [cmdOp(['brctl', 'stp', name, 'off'])], parent: linkKey(null, name) });
  return steps;
}

/** Enslaves a port: `ip link set dev PORT master BR` or `brctl addif BR PORT`; undo the inverse. */
export function addPort(bridge: string, port: string, driver: BridgeDriver): Step {
  if (driver === 'brctl') {
    return {
      describe: `add port ${port} to bridge ${bridge}`,
      do: cmdOp(['brctl', 'addif', bridge, port]),
      undo: [cmdOp(['brctl', 'delif', bridge, port])],
      parent: linkKey(null, port),
    };
  }
  return {
    describe: `add port ${port} to bridge ${bridge}`,
    do: ipOp(null, ['link', 'set', 'dev', port, 'master', bridge]),
    undo: [ipOp(null, ['link', 'set', 'dev', port, 'nomaster'])],
    parent: linkKey(null, port),
  };
}
