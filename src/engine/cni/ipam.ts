// CNI IPAM for nslab-cni: a plugin found on CNI_PATH run as the spec says (same stdin, CNI_* env), or
// nslab's own address book (network modes' state, under its lock).
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import netmask from 'netmask';
import type { Runner } from '../../exec/runner.js';
import { NslabError } from '../../errors.js';
import { allocate } from '../../model/ipam.js';
import { CNI_ERR, CniError, DEFAULT_CNI_PATH, delegateVersion, readResult, type CniCommand, type CniConf, type CniEnv, type CniResult, type NslabIpamConf } from '../../model/cni.js';
import { readNetState, withState } from '../netmodes/netstate.js';

const { Netmask } = netmask;

/**
 * Finds plugin `type` in CNI_PATH (then /opt/cni/bin, /usr/lib/cni when CNI_PATH is empty), as libcni's
 * FindInPath does.
 * @returns the executable's path, or null
 */
export function findPlugin(type: string, path: string[]): string | null {
  for (const dir of path.length ? path : DEFAULT_CNI_PATH) {
    const f = join(dir, type);
    try {
      accessSync(f, constants.X_OK);
      return f;
    } catch {
      /* not here */
    }
  }
  return null;
}

/**
 * Runs a delegated plugin (SPEC.md "Delegated plugins protocol"): the whole network configuration on
 * stdin (its cniVersion as {@link delegateVersion} says), the caller's CNI_* variables with
 * CNI_COMMAND = `command` (and `over` for a GC's DEL of another container).
 * @returns its stdout parsed (a result), or null when it printed nothing (DEL, CHECK)
 * @throws CniError: the plugin's own error (its code, msg, details), or 5 when it is not on CNI_PATH
 */
export async function execPlugin(r: Runner, type: string, command: CniCommand, conf: Record<string, unknown>, env: CniEnv, over: Record<string, string> = {}): Promise<unknown> {
  const bin = findPlugin(type, env.path);
  if (!bin) throw new CniError(CNI_ERR.IO, `ipam.type ${JSON.stringify(type)}: no such plugin in CNI_PATH (${(env.path.length ? env.path : DEFAULT_CNI_PATH).join(':')})`);
  const input = JSON.stringify({ ...conf, cniVersion: delegateVersion(command, String(conf.cniVersion)) });
  const vars: Record<string, string> = { CNI_COMMAND: command, CNI_CONTAINERID: env.containerId, CNI_NETNS: env.netns, CNI_IFNAME: env.ifname, CNI_PATH: env.path.join(':'), ...over };
  const res = await r.run({ argv: [bin], input, env: vars }, { check: false });
  let out: unknown = null;
  if (res.stdout.trim()) {
    try {
      out = JSON.parse(res.stdout);
    } catch {
      throw new CniError(CNI_ERR.DECODE, `${type} ${command}: printed no JSON: ${res.stdout.trim().slice(0, 200)}`, res.stderr.trim());
    }
  }
  if (res.exitCode !== 0) {
    const e = (out ?? {}) as { code?: number; msg?: string; details?: string };
    throw new CniError(typeof e.code === 'number' ? e.code : CNI_ERR.INTERNAL, `${type} ${command}: ${e.msg ?? (res.stderr.trim() || `exit code ${res.exitCode}`)}`, e.details ?? '');
  }
  return out;
}

/** The key of a lease of nslab's IPAM. */
function leaseKey(conf: CniConf, env: CniEnv): string {
  return `${conf.name}/${env.containerId}/${env.ifname}`;
}

/** Subnet, range and gateway of an nslab IPAM configuration (an nslab network's when `network` names one). */
async function poolOf(ipam: NslabIpamConf): Promise<{ subnet: string; range: string; gateway: string; network: string | null }> {
  if (ipam.network) {
    const net = (await readNetState()).networks[ipam.network];
    if (!net) throw new CniError(CNI_ERR.INVALID_CONFIG, `ipam.network ${JSON.stringify(ipam.network)}: no such nslab network (nslab network ls lists them)`);
    return { subnet: net.subnet, range: ipam.range ?? net.ipRange ?? net.subnet, gateway: net.gateway, network: net.name };
  }
  const block = new Netmask(ipam.subnet!);
  const subnet = `${block.base}/${block.bitmask}`;
  const gateway = ipam.gateway ?? block.first;
  if (!block.contains(gateway)) throw new CniError(CNI_ERR.INVALID_CONFIG, `ipam.gateway ${JSON.stringify(gateway)}: expected an address in ipam.subnet ${subnet}`);
  if (ipam.range && !block.contains(new Netmask(ipam.range).base)) throw new CniError(CNI_ERR.INVALID_CONFIG, `ipam.range ${JSON.stringify(ipam.range)}: expected a part of ipam.subnet ${subnet}`);
  return { subnet, range: ipam.range ?? subnet, gateway, network: null };
}

/**
 * nslab's IPAM, ADD: the attachment's address, handed out once under network modes' lock (lowest free
 * of the range, never the gateway, never one a node or another attachment holds: model/ipam.ts
 * allocate). An ADD run again for the same attachment gets the same address.
 */
async function nslabAdd(conf: CniConf, ipam: NslabIpamConf, env: CniEnv): Promise<CniResult> {
  const pool = await poolOf(ipam);
  const lease = await withState(async (st) => {
    const key = leaseKey(conf, env);
    const leases = (st.cni ??= {});
    const have = leases[key];
    if (have && have.subnet === pool.subnet) return have;
    const used = new Set<string>([pool.gateway]);
    for (const l of Object.values(leases)) if (l.subnet === pool.subnet) used.add(l.ip);
    for (const n of Object.values(st.nodes)) for (const e of n.endpoints) if (pool.network && e.network === pool.network) used.add(e.ip);
    let ip: string;
    try {
      ip = allocate(pool, used, null);
    } catch (err) {
      if (err instanceof NslabError) throw new CniError(CNI_ERR.TRY_AGAIN, `ipam: ${err.message}`);
      throw err;
    }
    return (leases[key] = { network: conf.name, containerId: env.containerId, ifname: env.ifname, subnet: pool.subnet, ip, gateway: pool.gateway });
  });
  const len = pool.subnet.split('/')[1];
  return { cniVersion: conf.cniVersion, ips: [{ address: `${lease.ip}/${len}`, gateway: lease.gateway }], routes: ipam.routes ?? [] };
}

/**
 * Releases the addresses of attachments: nslab's leases whose key `drop` accepts (DEL: one; GC: those
 * not valid any more).
 * @returns the released leases' keys
 */
export async function nslabRelease(drop: (key: string, l: { network: string; containerId: string; ifname: string }) => boolean): Promise<string[]> {
  const st0 = await readNetState();
  if (!Object.entries(st0.cni ?? {}).some(([k, l]) => drop(k, l))) return []; // nothing to do: no lock taken
  return withState(async (st) => {
    const gone: string[] = [];
    for (const [k, l] of Object.entries(st.cni ?? {})) {
      if (!drop(k, l)) continue;
      delete st.cni![k];
      gone.push(k);
    }
    if (st.cni && Object.keys(st.cni).length === 0) delete st.cni;
    return gone;
  });
}

/**
 * IPAM ADD: the addresses, routes and DNS for the attachment.
 * @returns a result without interfaces (nslab-cni adds them), or null when the config has no ipam
 */
export async function ipamAdd(r: Runner, conf: CniConf, raw: Record<string, unknown>, env: CniEnv): Promise<CniResult | null> {
  if (!conf.ipam) return null;
  if (conf.ipam.type === 'nslab') return nslabAdd(conf, conf.ipam as NslabIpamConf, env);
  return readResult(await execPlugin(r, conf.ipam.type, 'ADD', raw, env), `ipam ${conf.ipam.type} result`);
}

/** IPAM DEL: idempotent (a lease already released is no error, SPEC.md "DEL"). */
export async function ipamDel(r: Runner, conf: CniConf, raw: Record<string, unknown>, env: CniEnv): Promise<void> {
  if (!conf.ipam) return;
  if (conf.ipam.type === 'nslab') {
    const key = leaseKey(conf, env);
    await nslabRelease((k) => k === key);
    return;
  }
  await execPlugin(r, conf.ipam.type, 'DEL', raw, env);
}

/**
 * IPAM CHECK: the delegated plugin's own CHECK; for nslab's IPAM, the lease must still be there with
 * the address the result names.
 * @throws CniError from the plugin, or 100 when nslab's lease is missing or differs
 */
export async function ipamCheck(r: Runner, conf: CniConf, raw: Record<string, unknown>, env: CniEnv, prev: CniResult): Promise<void> {
  if (!conf.ipam) return;
  if (conf.ipam.type !== 'nslab') {
    await execPlugin(r, conf.ipam.type, 'CHECK', raw, env);
    return;
  }
  const lease = (await readNetState()).cni?.[leaseKey(conf, env)];
  if (!lease) throw new CniError(CNI_ERR.CHECK_FAILED, `ipam: nslab holds no address for ${leaseKey(conf, env)}`);
  if (!(prev.ips ?? []).some((x) => x.address.split('/')[0] === lease.ip)) throw new CniError(CNI_ERR.CHECK_FAILED, `ipam: nslab's address for ${leaseKey(conf, env)} is ${lease.ip}, which prevResult does not list`);
}
