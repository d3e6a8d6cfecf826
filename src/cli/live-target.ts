// The target words shared by `nslab capture` and `nslab link`: `NODE:IF`, a host interface, or `lab ID NODE:IF`.
import type { Runner } from '../exec/runner.js';
import type { LiveTarget } from '../engine/live/target.js';

/**
 * Resolves `TARGET` or `lab ID NODE:IF` to an interface here (engine/live/target.ts). For a lab, its
 * Open vSwitch (started by `lab up`) is used for OVS ports, and NODE must be one of its nodes.
 * @throws NslabError `INVALID_INPUT` (exit 2): a lab without id or target, an unknown node or interface
 */
export async function targetFromArgs(r: Runner, target: string, id: string | undefined, end: string | undefined): Promise<LiveTarget> {
  const { resolveTarget } = await import('../engine/live/target.js');
  const { invalid } = await import('../errors.js');
  // An OVS port of a lab left up (`lab up` started its own OVS): ovs-vsctl is pointed at it.
  const { labNetns, useLabOvs } = await import('../engine/labs/lab.js');
  useLabOvs();
  if (target !== 'lab') {
    if (id !== undefined) throw invalid(`unexpected ${JSON.stringify(id)} after ${target}: expected one target (NODE:IF), or lab ID NODE:IF`);
    return resolveTarget(r, target);
  }
  if (!id || !end) throw invalid('lab needs a lab id and a target: e.g. lab 07 c1:eth1');
  const { loadLab } = await import('../model/lab.js');
  const lab = await loadLab(id);
  return resolveTarget(r, end, { id: lab.id, nodes: labNetns(lab) });
}
