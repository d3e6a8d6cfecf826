// Topologies the benchmarks build: an N-node star on one bridge.

/**
 * The star: N nodes n1..nN, each eth0 on bridge br0, addresses in 10.0.0.0/16, the bridge at 10.0.255.254.
 * @param n number of nodes (1 to 5000)
 * @param name topology name
 * @returns the topology file's YAML text
 */
export function starYaml(n: number, name = 'bench-star'): string {
  const addr = (i: number) => `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}/16`;
  const lines = [`name: ${name}`, 'bridges:', '  br0: { addresses: [10.0.255.254/16] }', 'nodes:'];
  for (let i = 0; i < n; i++) lines.push(`  n${i + 1}:`, `    interfaces:`, `      eth0: { addresses: [${addr(i)}] }`);
  lines.push('links:');
  for (let i = 0; i < n; i++) lines.push(`  - [n${i + 1}:eth0, br0]`);
  return lines.join('\n') + '\n';
}
