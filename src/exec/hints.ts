// Hints for the errors the kernel and its tools give most often, keyed on their stderr.

const HINTS: Array<[RegExp, string]> = [
  [/File exists/i, 'an object with that name or address already exists: run `nslab down FILE` first, or pick another name'],
  [/Operation not permitted|Permission denied/i, 'nslab needs root (CAP_NET_ADMIN): run it as root, ideally inside `nslab sandbox -- ...`'],
  [/Cannot find device|does not exist/i, 'the interface is missing: check its name with `ip link` (inside the netns: `ip netns exec NS ip link`)'],
  [/Unknown device type/i, 'this kernel lacks that link type: run `nslab doctor` to see which ones work here'],
  [/Invalid argument/i, 'the kernel refused a value (an MTU above the parent\'s, a bad MAC, a route outside any subnet?)'],
  [/Network is unreachable|Nexthop has invalid gateway/i, 'the gateway is not on any connected subnet: add an address in its subnet first'],
  [/Cannot open network namespace|No such file or directory/i, 'the netns is missing: `ip netns list` shows which exist'],
  [/Device or resource busy/i, 'the object is in use (a port of a bridge, a process in the netns?)'],
];

/** A one-line hint for a tool's stderr, or undefined when nothing known matches. */
export function hintFor(stderr: string): string | undefined {
  for (const [re, hint] of HINTS) if (re.test(stderr)) return hint;
  return undefined;
}
