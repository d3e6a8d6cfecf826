// `nslab attach -f FILE`: a YAML list of attaches, each with the native flags as keys.
import { z } from 'zod';
import { loadYaml } from './load.js';
import type { AttachRequest } from './attach.js';
import { requestFromFlags } from './attach-flags.js';
import { NslabError, invalid } from '../errors.js';

// Built on first use, not when the module loads: the V8 startup snapshot (dist/snapshot) that holds
// this module together with yargs aborts when a zod schema already exists at build time.
const entry = () => z.strictObject({
  guest: z.union([z.string(), z.number()]).transform(String),
  to: z.string(),
  ip: z.union([z.string(), z.array(z.string())]).optional(),
  gw: z.string().optional(),
  ifname: z.string().default('eth1'),
  local: z.string().optional(),
  mac: z.string().optional(),
  mtu: z.number().optional(),
  vlan: z.union([z.string(), z.number()]).transform(String).optional(),
  dhcp: z.union([z.string(), z.boolean()]).optional(),
  route: z.union([z.string(), z.array(z.string())]).optional(),
  'host-access': z.boolean().default(false),
});

/** The file's schema: a list of attaches. */
export function attachFileSchema() {
  const expected = 'expected a list of attaches, e.g. - { guest: g1, to: br0, ip: 10.0.0.1/24 }';
  return z.array(entry(), { error: expected }).min(1, { message: expected });
}

/**
 * Reads an attach file: `- { guest: c1, to: br0, ip: 172.17.2.24/24@172.17.2.1 }` per line, keys as
 * the flags of `nslab attach` (`ip` and `route` may be lists; `dhcp: true` or a client name).
 * @throws NslabError INVALID_INPUT, one line `FILE:LINE: [N].key: problem`
 */
export async function loadAttachFile(file: string): Promise<AttachRequest[]> {
  const { value, where } = await loadYaml(file, attachFileSchema(), 'a list of attaches, e.g. - { guest: g1, to: br0, ip: 10.0.0.1/24 }');
  return value.map((e, i) => {
    const origin = `${where([i])}: [${i}]`;
    const list = (v: string | string[] | undefined) => (v === undefined ? undefined : Array.isArray(v) ? v : [v]);
    try {
      return requestFromFlags({
        guest: e.guest,
        to: e.to,
        ip: list(e.ip),
        gw: e.gw,
        ifname: e.ifname,
        local: e.local,
        mac: e.mac,
        mtu: e.mtu,
        vlan: e.vlan,
        dhcp: e.dhcp === undefined || e.dhcp === false ? undefined : e.dhcp === true ? '' : e.dhcp,
        route: list(e.route),
        'host-access': e['host-access'],
        'direct-phys': false,
      }, origin);
    } catch (err) {
      if (err instanceof NslabError) throw invalid(`${where([i])}: [${i}]: ${err.message}`);
      throw err;
    }
  });
}
