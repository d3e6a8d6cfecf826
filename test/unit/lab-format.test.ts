// The lab format: its reference and JSON Schemas are what the zod schemas say (no drift), every shipped
// lab passes `lab check`, the lint names each mistake a teacher made writing lab 16 with its line, and
// route gateways of the wrong family or link-local without a link are refused before anything runs.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { labJsonSchema, labReference, topologyJsonSchema } from '../../src/model/lab-doc.js';
import { formatProblem, lintLab, lintLabDir } from '../../src/model/lab-lint.js';
import { ACTION_KINDS, CHECK_KINDS, LabRaw, listLabs } from '../../src/model/lab.js';
import { newLab } from '../../src/engine/labs/scaffold.js';
import { NslabError } from '../../src/errors.js';
import { model } from '../helpers/topo.js';

const tmp: string[] = [];
afterAll(() => tmp.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('reference and schemas are made from the zod schemas', () => {
  test('docs/labs.md is what `npm run lab-docs` writes', () => {
    expect(readFileSync('docs/labs.md', 'utf8')).toBe(labReference());
  });
  test('labs/lab.schema.json and labs/topology.schema.json are what `npm run lab-docs` writes', () => {
    expect(JSON.parse(readFileSync('labs/lab.schema.json', 'utf8'))).toEqual(labJsonSchema());
    expect(JSON.parse(readFileSync('labs/topology.schema.json', 'utf8'))).toEqual(topologyJsonSchema());
  });
  test('the reference has a section and an example for every step kind and check kind', () => {
    const doc = labReference();
    for (const k of [...ACTION_KINDS, ...CHECK_KINDS]) expect(doc).toContain(`### \`${k.kind}\``);
  });
  test.each([...ACTION_KINDS, ...CHECK_KINDS].map((k) => [k.kind, k] as const))('the example of %s is valid', (_n, k) => {
    expect(k.schema.safeParse(k.example).success).toBe(true);
  });
  test('the JSON Schema lists every check kind (for completion)', () => {
    const text = JSON.stringify(labJsonSchema());
    for (const k of CHECK_KINDS) expect(text).toContain(`"${k.kind}":`);
  });
});

describe('shipped labs', () => {
  test('every shipped lab passes lab check (no errors, no warnings) and names its schema', async () => {
    const labs = await listLabs();
    expect(labs.length).toBeGreaterThanOrEqual(16);
    const problems = labs.flatMap((l) => lintLabDir(l.dir).map(formatProblem));
    expect(problems).toEqual([]);
    for (const l of labs) expect(readFileSync(join(l.dir, 'lab.yaml'), 'utf8').split('\n')[0]).toBe('# yaml-language-server: $schema=../lab.schema.json');
  });
});

/** The mistakes of issue 24, one lab. */
const BAD = `title: { en: Bad, zh: 坏 }
teaches: { en: x, zh: x }
step: 1
steps:
  - say: { en: a, zh: b }
    do:
      - topology:
          nodes:
            pc1: { interfaces: { eth0: { addresses: [10.0.0.2/24] } }, routes: [ { to: 10.9.0.0/16, via: "2001:db8::1" } ] }
            r1: { interfaces: { eth0: { addresses: [10.0.0.1/24] } } }
          links: [[pc1:eth0, r1:eth0]]
      - run: iptables -t nat -A POSTROUTING -o eth1 -j MASQUERADE
        in: router
      - runn: ip a
      - run: ip route add 10.8.0.0/16 via 2001:db8::9
        in: pc1
    expect:
      - pong: { from: pc1, to: 10.0.0.1 }
      - ping: { form: pc1, to: 10.0.0.1 }
      - ping: { from: pc3, to: 10.0.0.1 }
      - tcp: { from: pc1, to: 10.0.0.1, port: 80, error: refusd }
      - ping: { from: r2, to: 10.0.0.1 }
      - addr: { in: pc1, dev: eth9, address: 10.0.0.2/24 }
      - output: { run: "cat /proc/\${pidd}/status", in: pc1, contains: x }
      - ping: { to: 10.0.0.1 }
  - say: { en: a, zh: b }
    do:
      - run: ip netns add r2
`;

describe('lab check', () => {
  const lines = lintLab('bad.yaml', BAD, '/tmp').map(formatProblem);
  test.each([
    ['a misspelt top-level key', /^bad\.yaml:3: error: step: unknown key "step" \(did you mean "steps"\?\)/],
    ['an IPv6 gateway on an IPv4 route in a topology', /^bad\.yaml:9: error: steps\[0\]\.do\[0\]\.topology\.nodes\.pc1\.routes\[0\]\.via: gateway 2001:db8::1 is IPv6 but the route to 10\.9\.0\.0\/16 is IPv4/],
    ['a node that does not exist in an action', /^bad\.yaml:13: error: steps\[0\]\.do\[1\]\.in: no node "router" in this lab: its nodes are pc1, r1, r2/],
    ['an unknown step kind, with the valid ones', /^bad\.yaml:14: error: steps\[0\]\.do\[2\]\.runn: unknown step kind "runn" \(did you mean "run"\?\): expected one of run, spawn, topology, attach, nslab, service/],
    ['an IPv6 gateway on an IPv4 route in a command', /^bad\.yaml:15: error: steps\[0\]\.do\[3\]\.run: gateway 2001:db8::9 is IPv6 but the route to 10\.8\.0\.0\/16 is IPv4/],
    ['an unknown check kind, with the valid ones', /^bad\.yaml:18: error: steps\[0\]\.expect\[0\]\.pong: unknown check kind "pong" \(did you mean "ping"\?\): expected one of ping, tcp, http, output/],
    ['a misspelt check key', /^bad\.yaml:19: error: steps\[0\]\.expect\[1\]\.ping\.form: unknown key "form" \(did you mean "from"\?\)/],
    ['a node that does not exist in a check', /^bad\.yaml:20: error: steps\[0\]\.expect\[2\]\.ping\.from: no node "pc3" in this lab \(did you mean "pc1"\?\)/],
    ['an unknown error kind', /^bad\.yaml:21: error: steps\[0\]\.expect\[3\]\.tcp\.error: .*"refused"\|"unreachable"\|"timeout".*got "refusd"/],
    ['a node used before the step that makes it', /^bad\.yaml:22: error: steps\[0\]\.expect\[4\]\.ping\.from: node "r2" is made in step 2, after this step 1/],
    ['an interface the node does not have', /^bad\.yaml:23: error: steps\[0\]\.expect\[5\]\.addr\.dev: node "pc1" has no interface "eth9" \(did you mean "eth0"\?\)/],
    ['a ${NAME} never spawned', /^bad\.yaml:24: error: steps\[0\]\.expect\[6\]\.output\.run: \$\{pidd\} names no process spawned by this lab/],
    ['a check that runs in the host by default', /^bad\.yaml:25: warning: steps\[0\]\.expect\[7\]\.ping: no from: this check runs in the host/],
  ])('%s', (_what, re) => {
    expect(lines.filter((l) => re.test(l))).toHaveLength(1);
  });
  test('every problem at once, in line order, and nothing else', () => {
    expect(lines).toHaveLength(13);
    const at = lines.map((l) => Number(l.split(':')[1]));
    expect(at).toEqual([...at].sort((a, b) => a - b));
  });
  test('an action using a node made by a later action of the same step', () => {
    const yaml = BAD.replace('      - run: ip netns add r2\n', '      - run: ip link set lo up\n        in: r3\n      - run: ip netns add r3\n');
    expect(lintLab('bad.yaml', yaml, '/tmp').map(formatProblem)).toContainEqual(expect.stringMatching(/steps\[1\]\.do\[0\]\.in: node "r3" is made by a later action of this step/));
  });
  test('a copied lab that keeps the topology name of the lab it came from', () => {
    const yaml = readFileSync('labs/06-routing-table/lab.yaml', 'utf8');
    expect(lintLab('lab.yaml', yaml, '/x/17-copy').map(formatProblem)).toEqual([expect.stringMatching(/^lab\.yaml:\d+: warning: steps\[0\]\.do\[0\]\.topology\.name: topology name "lab06" is lab 06's \(copied\?\): expected lab17$/)]);
  });
  test('a network command with no in: in a lab of nodes is a warning; in: host says it is meant', () => {
    const yaml = (where: string) => `title: { en: t, zh: t }\nteaches: { en: t, zh: t }\nsteps:\n  - say: { en: s, zh: s }\n    do:\n      - run: ip netns add r1\n      - run: iptables -t nat -A POSTROUTING -o eth1 -j MASQUERADE\n${where}`;
    expect(lintLab('l.yaml', yaml(''), '/tmp').map(formatProblem)).toEqual([expect.stringMatching(/^l\.yaml:7: warning: steps\[0\]\.do\[1\]\.run: no in: this command changes the host .*\(r1\): write in: host if that is meant$/)]);
    expect(lintLab('l.yaml', yaml('        in: host\n'), '/tmp')).toEqual([]);
  });
  test('not YAML: the parser\'s line', () => {
    expect(lintLab('x.yaml', 'title: [\n', '/tmp').map(formatProblem)[0]).toMatch(/^x\.yaml:\d+: error: not valid YAML/);
  });
});

describe('lab new', () => {
  test('the scaffold passes lab check as written, names its topology from the folder, and keeps its README diagram markers', () => {
    const root = mkdtempSync(join(tmpdir(), 'nslab-labnew-'));
    tmp.push(root);
    const dir = newLab(join(root, '16-nat-router'));
    expect(lintLabDir(dir)).toEqual([]);
    const yaml = readFileSync(join(dir, 'lab.yaml'), 'utf8');
    expect(yaml).toMatch(/name: 16-nat-router/);
    expect(LabRaw.safeParse(parseYaml(yaml)).success).toBe(true);
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).toContain('<!-- end of diagram -->');
    expect(() => newLab(join(root, '16-nat-router'))).toThrow(/exists already/);
    expect(() => newLab(join(root, 'nat'))).toThrow(/expected NN-topic/);
  });
});

describe('route gateways (before anything is built: plan and up)', () => {
  const two = (routes: string, ifs = 'eth0: { addresses: [10.0.0.2/24, "2001:db8::2/64"] }') => `name: t
nodes:
  pc1:
    interfaces:
      ${ifs}
    routes: [${routes}]
  r1:
    interfaces:
      eth0: { addresses: [10.0.0.1/24, "2001:db8::1/64"] }
links:
  - [pc1:eth0, r1:eth0]
`;
  async function errorOf(yaml: string): Promise<NslabError> {
    try {
      await model('t', yaml);
    } catch (e) {
      return e as NslabError;
    }
    throw new Error('expected an error');
  }
  test('an IPv6 gateway on an IPv4 route is refused at its line, naming both families', async () => {
    const e = await errorOf(two('{ to: 10.9.0.0/16, via: "2001:db8::1" }'));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toMatch(/^\S+t\.yaml:6: nodes\.pc1\.routes\[0\]\.via: gateway 2001:db8::1 is IPv6 but the route to 10\.9\.0\.0\/16 is IPv4: expected an IPv4 gateway/);
  });
  test('an IPv4 gateway on an IPv6 route likewise', async () => {
    expect((await errorOf(two('{ to: "2001:db8:9::/48", via: 10.0.0.1 }'))).message).toMatch(/gateway 10\.0\.0\.1 is IPv4 but the route to 2001:db8:9::\/48 is IPv6/);
  });
  test('a default route takes either family', async () => {
    const m = await model('t', two('{ to: default, via: "2001:db8::1" }'));
    expect(m.nodes[0]!.routes[0]!.via).toBe('2001:db8::1');
  });
  test('a link-local gateway without dev on a node with one interface gets that interface', async () => {
    const m = await model('t', two('{ to: "2001:db8:9::/48", via: "fe80::1" }'));
    expect(m.nodes[0]!.routes[0]).toEqual({ to: '2001:db8:9::/48', via: 'fe80::1', dev: 'eth0', type: 'unicast' });
  });
  test('a link-local gateway without dev on a node with two interfaces is refused, naming them', async () => {
    const yaml = two('{ to: "2001:db8:9::/48", via: "fe80::1" }').replace('links:\n', 'links:\n  - [pc1:eth1, r1:eth1]\n').replace('      eth0: { addresses: [10.0.0.1/24, "2001:db8::1/64"] }', '      eth0: { addresses: [10.0.0.1/24, "2001:db8::1/64"] }\n      eth1: {}');
    expect((await errorOf(yaml.replace('interfaces:\n      eth0: { addresses: [10.0.0.2/24, "2001:db8::2/64"] }', 'interfaces:\n      eth0: { addresses: [10.0.0.2/24, "2001:db8::2/64"] }\n      eth1: {}'))).message).toMatch(/link-local gateway fe80::1 of the route to 2001:db8:9::\/48 is on every link of pc1 \(eth0, eth1\): expected dev:/);
  });
});

describe('a lab in a folder of its own', () => {
  test('lab check takes a folder path', () => {
    const root = mkdtempSync(join(tmpdir(), 'nslab-labdir-'));
    tmp.push(root);
    mkdirSync(join(root, 'x'));
    writeFileSync(join(root, 'x', 'lab.yaml'), 'title: { en: a, zh: b }\nteaches: { en: a, zh: b }\nsteps: []\n');
    expect(lintLabDir(join(root, 'x')).map((p) => p.message)).toEqual([expect.stringMatching(/expected a list of steps/)]);
  });
});
