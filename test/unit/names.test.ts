// Derived names: deterministic, at most 15 bytes, never colliding.
import { bridgePortName, ifnameProblem, IFNAMSIZ_MAX } from '../../src/model/names.js';

describe('interface names', () => {
  test.each([
    ['eth0', null],
    ['a-fifteen-bytes', null],
    ['sixteen-bytes-xx', /16 bytes long; an interface name has at most 15/],
    ['', /empty/],
    ['eth 0', /blank/],
    ['a/b', /"\/"/],
    ['a:b', /":"/],
    ['.', /reserved/],
    ['ünïcödé-nämes', /bytes long/],
  ])('%j', (name, problem) => {
    const p = ifnameProblem(name);
    if (problem === null) expect(p).toBeNull();
    else expect(p).toMatch(problem);
  });

  test('bridge port names are readable when they fit, hashed when not, always <= 15 bytes', () => {
    expect(bridgePortName('t', 'h1', 'eth0', new Set())).toBe('h1-eth0');
    const long = bridgePortName('t', 'a-very-long-node-name', 'eth0', new Set());
    expect(long).toMatch(/^nl[0-9a-f]{10}$/);
    expect(bridgePortName('t', 'a-very-long-node-name', 'eth0', new Set())).toBe(long);
    for (let i = 0; i < 200; i++) {
      const n = bridgePortName('topo', `node-${'x'.repeat(i % 40)}-${i}`, `eth${i}`, new Set());
      expect(Buffer.byteLength(n)).toBeLessThanOrEqual(IFNAMSIZ_MAX);
    }
  });

  test('a readable name already taken falls back to the hash', () => {
    const n = bridgePortName('t', 'h1', 'eth0', new Set(['h1-eth0']));
    expect(n).not.toBe('h1-eth0');
    expect(n).toMatch(/^nl[0-9a-f]{10}$/);
  });

  test('different (topology, node, ifname) give different hashed names', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) seen.add(bridgePortName('t', `n${'x'.repeat(20)}${i}`, 'eth0', new Set()));
    expect(seen.size).toBe(2000);
  });
});
