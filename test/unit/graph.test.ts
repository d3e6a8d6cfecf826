// graph: DOT and Mermaid generated from the model; SVG through graphviz when it is installed.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadTopology } from '../../src/engine/topology.js';
import { ExecRunner, type Runner } from '../../src/exec/runner.js';
import { NslabError } from '../../src/errors.js';
import { renderGraph, toDot, toMermaid } from '../../src/verify/graph.js';
import { example, model } from '../helpers/topo.js';

const hasDot = spawnSync('dot', ['-V']).status === 0;

describe('graph', () => {
  test('DOT: nodes with routes, bridges with addresses, veths labelled at both ends', async () => {
    const dot = toDot(await loadTopology(example('star')));
    expect(dot).toMatch(/^graph "star" \{\n/);
    expect(dot).toContain('"node:h1" [label="h1\\ndefault via 10.0.0.254", shape=box, style=rounded];');
    expect(dot).toContain('"bridge:br0" [label="bridge br0\\n10.0.0.254/24", shape=ellipse');
    expect(dot).toContain('"node:h3" -- "bridge:br0" [taillabel="eth0\\n10.0.0.3/24\\nfd00::3/64", headlabel="h3-eth0"];');
    expect(dot.trimEnd().endsWith('}')).toBe(true);
  });

  test('DOT: a router is marked forwarding; node-to-node veths join the two nodes', async () => {
    const dot = toDot(await loadTopology(example('chain')));
    expect(dot).toContain('"node:r" [label="r (forwarding)"');
    expect(dot).toContain('"node:a" -- "node:r" [taillabel="eth0\\n10.0.1.1/24", headlabel="eth0\\n10.0.1.254/24"];');
    expect(dot).toContain('unreachable 10.9.0.0/16');
  });

  test('the host appears as a node only when it has interfaces', async () => {
    const m = await model('h', `host:\n  interfaces: { veth-a: { addresses: [10.1.0.1/24] } }\nnodes:\n  n1:\n    interfaces: { veth-b: { addresses: [10.1.0.2/24] } }\nlinks:\n  - [host:veth-a, n1:veth-b]\n`);
    expect(toDot(m)).toContain('"node:host" -- "node:n1"');
    expect(toDot(await loadTopology(example('star')))).not.toContain('node:host');
  });

  test('Mermaid: numbered ids, names in labels, one edge per veth', async () => {
    const mm = toMermaid(await loadTopology(example('star')));
    expect(mm.split('\n')).toEqual([
      'flowchart LR',
      '  n0["h1<br/>default via 10.0.0.254"]',
      '  n1["h2<br/>default via 10.0.0.254"]',
      '  n2["h3"]',
      '  b3(["bridge br0<br/>10.0.0.254/24"])',
      '  n0 ---|"eth0 10.0.0.1/24 — h1-eth0"| b3',
      '  n1 ---|"eth0 10.0.0.2/24 — h2-eth0"| b3',
      '  n2 ---|"eth0 10.0.0.3/24 fd00::3/64 — h3-eth0"| b3',
      '',
    ]);
  });

  test('an unknown format is INVALID_INPUT naming it and the choices', async () => {
    const m = await loadTopology(example('star'));
    await expect(renderGraph(new ExecRunner(), m, 'png')).rejects.toMatchObject({ code: 'INVALID_INPUT', message: '--format "png": expected one of dot, mermaid, svg' });
  });

  test('svg without graphviz: one line saying what to install', async () => {
    const missing: Runner = {
      run: async () => {
        throw new NslabError('MISSING_TOOL', 'cannot run dot: spawn dot ENOENT');
      },
      batch: async () => ({ failed: [], stderr: '' }),
      batchEach: async () => [],
    };
    const err = await renderGraph(missing, await loadTopology(example('star')), 'svg').catch((e: unknown) => e as NslabError);
    expect(err).toMatchObject({ code: 'MISSING_TOOL' });
    expect((err as NslabError).message).toMatch(/^graph --format svg needs graphviz, which is not installed: apt-get install graphviz/);
  });

  (hasDot ? test : test.skip).each(readdirSync(join(process.cwd(), 'examples')).filter((f) => f.endsWith('.yaml')))('graphviz parses the graph of examples/%s and draws an SVG', async (f) => {
    const svg = await renderGraph(new ExecRunner(), await loadTopology(join(process.cwd(), 'examples', f)), 'svg');
    expect(svg).toMatch(/<svg[\s\S]*<\/svg>\s*$/);
  });
});
