// Open vSwitch facts nslab needs before it can choose a datapath (the bridge code comes with attach).
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';

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
