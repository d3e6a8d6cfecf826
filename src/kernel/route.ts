// Routes: net via gateway, net via dev, default, and the blocking kinds (unreachable, prohibit, blackhole).
import type { Runner } from '../exec/runner.js';
import { ipOp, linkKey, netnsKey, type Step } from './step.js';

/**
 * Route types of ip-route(8). `reject` is route(8)'s name for a route that answers "Network is
 * unreachable" (`route add -net 10.0.0.0 netmask 255.0.0.0 reject`): the kernel's `unreachable`.
 */
export type RouteType = 'unicast' | 'unreachable' | 'prohibit' | 'blackhole';

/** A route: `to` is a CIDR or `default`; a unicast route has `via` (a gateway) and/or `dev`. */
export interface RouteSpec {
  to: string;
  via?: string;
  dev?: string;
  type: RouteType;
  metric?: number;
  /** The gateway is on the link though outside the device's subnets (ip-route(8) `onlink`). */
  onlink?: boolean;
}

/** The `ip route` arguments after `add`/`del` for a route (ip-route(8) order: TYPE PREFIX via GW dev DEV). */
export function routeArgs(r: RouteSpec): string[] {
  // No -4/-6: they are global options, refused inside `ip -batch`; ip infers the family from the
  // prefix or the gateway (a v6 default without gateway is written ::/0).
  return [
    'route',
    ...(r.type === 'unicast' ? [] : [r.type]),
    r.to,
    ...(r.via ? ['via', r.via] : []),
    ...(r.dev ? ['dev', r.dev] : []),
    ...(r.metric !== undefined ? ['metric', String(r.metric)] : []),
    ...(r.onlink ? ['onlink'] : []),
  ];
}

/** The same route as `ip route` prints it, for messages: "10.0.0.0/8 via 10.0.1.1 dev eth0". */
export function describeRoute(r: RouteSpec): string {
  return routeArgs(r).filter((a) => a !== 'route').join(' ');
}

/**
 * `ip route add ROUTE` in a netns; undo `ip route del ROUTE`. When the route names a device, deleting
 * that device removes the route too; otherwise the netns is its parent.
 */
export function addRoute(netns: string | null, r: RouteSpec): Step {
  const args = routeArgs(r);
  const i = args.indexOf('route');
  const withVerb = (verb: string) => [...args.slice(0, i + 1), verb, ...args.slice(i + 1)];
  return {
    describe: `add route ${describeRoute(r)}${netns ? ` in ${netns}` : ''}`,
    do: ipOp(netns, withVerb('add')),
    undo: [ipOp(netns, withVerb('del'))],
    ...(r.dev ? { parent: linkKey(netns, r.dev) } : netns ? { parent: netnsKey(netns) } : {}),
  };
}

/** One route as `ip -j route show` reports it. */
export interface RouteInfo {
  dst: string;
  type?: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  prefsrc?: string;
  metric?: number;
  flags: string[];
}

/** Reads the main routing table of a netns, v4 or v6 (`ip -j [-6] route show`). */
export async function readRoutes(r: Runner, netns: string | null, family: 4 | 6 = 4): Promise<RouteInfo[]> {
  const res = await r.run({ argv: ['ip', '-j', ...(family === 6 ? ['-6'] : []), 'route', 'show'], netns });
  return JSON.parse(res.stdout || '[]') as RouteInfo[];
}
