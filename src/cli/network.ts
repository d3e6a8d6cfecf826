// `nslab network create|ls|inspect|rm|connect|disconnect|default`: Docker's network commands, no daemon.
import type { Argv, CommandModule } from 'yargs';
import { printJson, printTable, reportError, requireRoot } from './output.js';

type Json = { json: boolean };

const create: CommandModule<object, Json & { name: string; driver?: string; subnet?: string; gateway?: string }> = {
  command: 'create <name>',
  describe: 'Create a user-defined bridge network (subnet picked from 172.18.0.0/16, 172.19.0.0/16, … unless given)',
  builder: (y) =>
    y
      .positional('name', { type: 'string', demandOption: true })
      .option('driver', { alias: 'd', type: 'string', describe: 'network driver: bridge (the only one)' })
      .option('subnet', { type: 'string', describe: 'subnet CIDR, such as 172.33.1.0/24 (allows static --ip for nodes)' })
      .option('gateway', { type: 'string', describe: 'gateway address in the subnet (default: its first address); needs --subnet' })
      .option('json', { type: 'boolean', default: false })
      .example('$0 network create nw-01', 'next free subnet, e.g. 172.19.0.0/16, gateway 172.19.0.1, bridge br-<id>')
      .example('$0 network create --driver bridge --subnet 172.33.1.0/24 --gateway 172.33.1.1 my-net3', 'a subnet and gateway of your choice') as unknown as Argv<Json & { name: string; driver?: string; subnet?: string; gateway?: string }>,
  handler: async (a) => {
    try {
      const { networkCreateRequest } = await import('../model/netmodes.js');
      const req = networkCreateRequest(a);
      requireRoot();
      const { ExecRunner } = await import('../exec/runner.js');
      const { createNetwork } = await import('../engine/netmodes/network.js');
      const n = await createNetwork(new ExecRunner(), req);
      if (a.json) printJson(n);
      else process.stdout.write(`${n.id}\n`);
    } catch (err) {
      reportError(err, a.json);
    }
  },
};

const ls: CommandModule<object, Json> = {
  command: 'ls',
  describe: 'List networks (bridge, host and none are predefined, as in Docker)',
  builder: (y) => y.option('json', { type: 'boolean', default: false }).example('$0 network ls', 'ID, name, driver, subnet, gateway, bridge, nodes') as Argv<Json>,
  handler: async (a) => {
    try {
      const { listNetworks } = await import('../engine/netmodes/network.js');
      const nets = await listNetworks();
      if (a.json) return printJson(nets);
      const rows = nets.map((n) => [n.id.slice(0, 12), n.name, n.driver, 'local', n.subnet, n.gateway, n.bridge, n.nodes.map((x) => x.node).join(',')]);
      if (!nets.some((n) => n.isDefault)) rows.unshift(['-', 'bridge', 'bridge', 'local', '(made on first use)', '', 'nslab0', '']);
      rows.push(['-', 'host', 'host', 'local', '', '', '', ''], ['-', 'none', 'null', 'local', '', '', '', '']);
      await printTable(['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE', 'SUBNET', 'GATEWAY', 'BRIDGE', 'NODES'], rows);
    } catch (err) {
      reportError(err, a.json);
    }
  },
};

const inspect: CommandModule<object, { names: string[] }> = {
  command: 'inspect <names..>',
  describe: 'Print networks as JSON (docker network inspect\'s shape)',
  builder: (y) => y.positional('names', { type: 'string', array: true, demandOption: true }).example('$0 network inspect nw-01', 'subnet, gateway, bridge, connected nodes') as unknown as Argv<{ names: string[] }>,
  handler: async (a) => {
    try {
      const { inspectNetworks } = await import('../engine/netmodes/network.js');
      printJson(await inspectNetworks(a.names.map(String)));
    } catch (err) {
      reportError(err, false);
    }
  },
};

const rmCmd: CommandModule<object, Json & { names: string[]; force: boolean }> = {
  command: 'rm <names..>',
  describe: 'Remove networks: bridge, rules, and with the last one the host setup (refused while nodes are connected, unless --force)',
  builder: (y) =>
    y
      .positional('names', { type: 'string', array: true, demandOption: true })
      .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'disconnect connected nodes first' })
      .option('json', { type: 'boolean', default: false })
      .example('$0 network rm nw-02', 'remove a network no node uses')
      .example('$0 network rm --force nw-01', 'disconnect its nodes, then remove it') as unknown as Argv<Json & { names: string[]; force: boolean }>,
  handler: async (a) => {
    try {
      requireRoot();
      const { ExecRunner } = await import('../exec/runner.js');
      const { removeNetworks } = await import('../engine/netmodes/network.js');
      const out = await removeNetworks(new ExecRunner(), a.names.map(String), a.force);
      if (a.json) printJson(out);
      else for (const o of out) process.stdout.write(`${o.network}\n`);
    } catch (err) {
      reportError(err, a.json);
    }
  },
};

const connect: CommandModule<object, Json & { network: string; node: string; ip?: string }> = {
  command: 'connect <network> <node>',
  describe: 'Connect a node to a network: it gets the next ethN',
  builder: (y) =>
    y
      .positional('network', { type: 'string', demandOption: true })
      .positional('node', { type: 'string', demandOption: true })
      .option('ip', { type: 'string', describe: 'static address (networks created with --subnet only)' })
      .option('json', { type: 'boolean', default: false })
      .example('$0 network connect nw-01 test02', 'test02 gets eth1 172.19.0.4 and now reaches test00 and test01') as unknown as Argv<Json & { network: string; node: string; ip?: string }>,
  handler: async (a) => {
    try {
      requireRoot();
      const { ExecRunner } = await import('../exec/runner.js');
      const { connectNetwork } = await import('../engine/netmodes/network.js');
      const ep = await connectNetwork(new ExecRunner(), a.network, a.node, a.ip ?? null);
      if (a.json) printJson(ep);
      else process.stdout.write(`${a.node}: ${ep.ifname} ${ep.ip}/${ep.prefix} on ${ep.network}\n`);
    } catch (err) {
      reportError(err, a.json);
    }
  },
};

const disconnect: CommandModule<object, Json & { network: string; node: string }> = {
  command: 'disconnect <network> <node>',
  describe: 'Disconnect a node from a network (its interface goes, its address is released)',
  builder: (y) =>
    y
      .positional('network', { type: 'string', demandOption: true })
      .positional('node', { type: 'string', demandOption: true })
      .option('json', { type: 'boolean', default: false })
      .example('$0 network disconnect nw-01 test02', 'remove test02\'s eth1 again') as unknown as Argv<Json & { network: string; node: string }>,
  handler: async (a) => {
    try {
      requireRoot();
      const { ExecRunner } = await import('../exec/runner.js');
      const { disconnectNetwork } = await import('../engine/netmodes/network.js');
      const ep = await disconnectNetwork(new ExecRunner(), a.network, a.node);
      if (a.json) printJson(ep);
      else process.stdout.write(`${a.node}: ${ep.ifname} ${ep.ip} removed from ${ep.network}\n`);
    } catch (err) {
      reportError(err, a.json);
    }
  },
};

type DefaultArgs = Json & { bip?: string; 'fixed-cidr'?: string; mtu?: number; bridge?: string; icc?: boolean; 'ip-forward'?: boolean; iptables?: boolean };

const def: CommandModule<object, DefaultArgs> = {
  command: 'default',
  describe: 'Make the default network (bridge nslab0, 172.17.0.1/16) with dockerd\'s options; `node run` makes it with the defaults otherwise',
  builder: (y) =>
    y
      .option('bip', { type: 'string', describe: 'bridge address and subnet, e.g. 172.17.0.1/24' })
      .option('fixed-cidr', { type: 'string', describe: 'range for node addresses within the subnet, e.g. 172.17.0.1/25' })
      .option('mtu', { type: 'number', describe: 'MTU in bytes of the bridge and the nodes\' eth0 (default 1500)' })
      .option('bridge', { alias: 'b', type: 'string', describe: 'use this existing bridge (its address gives the subnet) instead of nslab0' })
      .option('icc', { type: 'boolean', describe: 'nodes on the default network may talk to each other (default true)' })
      .option('ip-forward', { type: 'boolean', describe: 'turn net.ipv4.ip_forward on (default true)' })
      .option('iptables', { type: 'boolean', describe: 'add iptables rules: NAT, FORWARD, isolation, published ports (default true)' })
      .option('json', { type: 'boolean', default: false })
      .example('$0 network default --bip 172.17.0.1/24 --fixed-cidr 172.17.0.1/25', 'the notes\' DOCKER_OPTS')
      .example('$0 network default --bridge bridge0', 'use bridge0 (192.168.5.1/24) as the default network')
      .example('$0 network default --iptables=false', 'no NAT: nodes cannot reach what has no route back to them') as unknown as Argv<DefaultArgs>,
  handler: async (a) => {
    try {
      const { daemonOptions } = await import('../model/netmodes.js');
      const opts = daemonOptions(a);
      requireRoot();
      const { ExecRunner } = await import('../exec/runner.js');
      const { networkDefault } = await import('../engine/netmodes/network.js');
      const n = await networkDefault(new ExecRunner(), opts);
      if (a.json) printJson(n);
      else process.stdout.write(`default network: ${n.bridge} ${n.gateway}/${n.subnet.split('/')[1]}${n.ipRange ? `, nodes from ${n.ipRange}` : ''}, mtu ${n.mtu}, icc ${n.icc}, iptables ${n.iptables}\n`);
    } catch (err) {
      reportError(err, a.json);
    }
  },
};

/** `nslab network …` */
export const networkCommand: CommandModule = {
  command: 'network <command>',
  describe: 'Docker-like networks: the default bridge and user-defined bridge networks (create, ls, inspect, rm, connect, disconnect, default)',
  builder: (y) =>
    y
      .command(create)
      .command(ls)
      .command(inspect)
      .command(rmCmd)
      .command(connect)
      .command(disconnect)
      .command(def)
      .demandCommand(1, 'name a network command: nslab network --help lists them')
      .example('$0 network create nw-01 && $0 node run test00 --net nw-01', 'a network and a node on it'),
  handler: () => undefined,
};
