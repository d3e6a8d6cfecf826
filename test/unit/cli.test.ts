// The command line's pure parts: exit-code mapping, "needs X" lines, completion answers, tables fitted
// to the terminal, colour rules, DHCP ranges of `nslab service dnsmasq`, the lab summary line.
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT_CODE, type ErrorCode } from '../../src/errors.js';
import { missingLine } from '../../src/cli/yargs-cli.js';
import { complete, completionScript, dynamicCompletions } from '../../src/cli/complete.js';
import { displayWidth, fitWidths, renderTable, setWide, useColor } from '../../src/exec/terminal.js';
import { dhcpRange } from '../../src/model/services.js';
import { labSummary } from '../../src/cli/lab.js';
import { logError } from '../../src/exec/runner.js';

describe('exit codes', () => {
  test('every error code maps onto the contract: 1, 2, 3 or 130, never 255', () => {
    const want: Record<ErrorCode, number> = { INVALID_INPUT: 2, NOT_FOUND: 2, COMMAND_FAILED: 1, APPLY_FAILED: 1, MISSING_TOOL: 3, NOT_ROOT: 3, INTERRUPTED: 130 };
    expect(EXIT_CODE).toEqual(want);
  });
});

describe('a command without what it needs', () => {
  test.each([
    ['Not enough non-option arguments: got 0, need at least 1', 'nslab up <file>\n\nCreate ...', 'up needs FILE (usage above)'],
    ['Not enough non-option arguments: got 1, need at least 2', 'nslab detach <guest> <ifname>\n', 'detach needs IFNAME (usage above)'],
    ['Not enough non-option arguments: got 0, need at least 1', 'nslab lab <action> [id] [node]\n', 'lab needs ACTION (usage above)'],
    ['Not enough non-option arguments: got 0, need at least 1', 'nslab node rm <names..>\n', 'node rm needs NAMES (usage above)'],
    ['Missing required argument: file', 'nslab plan <file>\n', 'plan needs FILE (usage above)'],
    ['name a command', 'nslab <command> [options]\n', 'name a command (listed above)'],
  ])('%s, usage %j: %s', (msg, help, line) => {
    expect(missingLine(msg, help)).toBe(line);
  });
});

describe('completion', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nslab-complete-'));
  const cwd = process.cwd();
  beforeAll(() => {
    mkdirSync(join(dir, 'sub'));
    for (const f of ['a.yaml', 'b.yml', 'notes.txt', 'sub/c.yaml']) writeFileSync(join(dir, f), '');
  });
  afterAll(() => process.chdir(cwd));

  test('lab ids after lab run, verify lab, pingall lab, graph lab', () => {
    for (const words of [['lab', 'run'], ['lab', 'show'], ['verify', 'lab'], ['pingall', 'lab'], ['graph', 'lab']]) {
      const ids = dynamicCompletions(words, '')!;
      expect(ids).toContain('07');
      expect(ids).toContain('15');
      expect(ids.every((i) => /^\d\d$/.test(i))).toBe(true);
    }
    expect(dynamicCompletions(['lab'], '')).toBeNull(); // the actions: yargs' choices
  });

  test('topology files (and folders) after up, down, plan, verify; "lab" (and "attachments" after verify) too where it fits', () => {
    process.chdir(dir);
    try {
      expect(dynamicCompletions(['up'], '')).toEqual(['a.yaml', 'b.yml', 'sub/']);
      expect(dynamicCompletions(['down'], 'sub/')).toEqual(['sub/c.yaml']);
      expect(dynamicCompletions(['verify'], '')).toEqual(['lab', 'attachments', 'a.yaml', 'b.yml', 'sub/']);
    } finally {
      process.chdir(cwd);
    }
  });

  test('yargs passes the word being typed in argv._, empty or not: it is not a word before it', () => {
    const ask = (words: string[], current: string) => new Promise<string[]>((res) => complete(current, { _: words }, (cb) => cb(null, ['--yargs-default']), res));
    return Promise.all([
      ask(['lab', 'run', ''], '').then((l) => expect(l).toContain('07')),
      ask(['lab', 'run', '0'], '0').then((l) => expect(l).toContain('07')),
      ask(['lab', ''], '').then((l) => expect(l).toEqual(['--yargs-default'])),
    ]);
  });

  test('options are left to yargs', () => {
    expect(dynamicCompletions(['up'], '--')).toBeNull();
    expect(dynamicCompletions(['attach', 'g1', '--ip'], '')).toBeNull();
  });

  test('each script asks nslab --get-yargs-completions with the words before the cursor', () => {
    expect(completionScript('bash')).toMatch(/complete -o bashdefault -o default -F _nslab_completions nslab/);
    expect(completionScript('bash')).toContain('nslab --get-yargs-completions "${COMP_WORDS[@]:1:COMP_CWORD}"');
    expect(completionScript('zsh')).toMatch(/^#compdef nslab/);
    expect(completionScript('fish')).toContain("complete -c nslab -f -a '(SHELL=fish nslab --get-yargs-completions");
  });
});

describe('tables fit the terminal', () => {
  const saved = { COLUMNS: process.env.COLUMNS, NO_COLOR: process.env.NO_COLOR };
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
    setWide(false);
  });
  const rows = [
    ['kernel: 802.1q vlan', 'no', 'Error: Unknown device type. (ip link add x type vlan)', 'modprobe 8021q (package linux-modules-extra, or a kernel with CONFIG_VLAN_8021Q)'],
    ['root', 'ok', 'running as root', ''],
  ];

  test.each([80, 60, 120])('COLUMNS=%i: no line is wider, long cells end in …, no rule between rows', async (cols) => {
    process.env.COLUMNS = String(cols);
    const out = await renderTable(['CHECK', 'OK', 'DETAIL', 'WHEN MISSING'], rows);
    const lines = out.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    for (const l of lines) expect(displayWidth(l)).toBeLessThanOrEqual(cols);
    expect(out).toContain('…');
    expect(out).not.toMatch(/[─┼├]/);
  });

  test('--wide keeps every cell whole', async () => {
    process.env.COLUMNS = '40';
    setWide(true);
    const out = await renderTable(['CHECK', 'OK', 'DETAIL', 'WHEN MISSING'], rows);
    expect(out).toContain('modprobe 8021q (package linux-modules-extra, or a kernel with CONFIG_VLAN_8021Q)');
    expect(out).not.toContain('…');
  });

  test('borders (the pingall matrix) fit too, with no rule between rows', async () => {
    process.env.COLUMNS = '50';
    const out = await renderTable(['from \\ to', 'a-very-long-node-name', 'another-long-node-name', 'third-node'], [['a', '2/2', '0/1 !', '1/2 ✓'], ['b', '1/1', '·', '2/2']], { borders: true });
    const lines = out.trimEnd().split('\n');
    expect(lines).toHaveLength(5); // top, head, two rows, bottom
    for (const l of lines) expect(displayWidth(l)).toBeLessThanOrEqual(50);
  });

  test('fitWidths takes from the widest column first and keeps the minimums', () => {
    expect(fitWidths([10, 40, 5], 40, 6, [4, 4, 4])).toEqual([10, 19, 5]);
    expect(fitWidths([10, 40, 5], 10, 6, [4, 4, 4])).toEqual([4, 4, 4]);
  });

  test('Chinese takes two columns a character', () => {
    expect(displayWidth('网络命名空间')).toBe(12);
    expect(displayWidth('\x1b[32mok\x1b[0m')).toBe(2);
  });

  test('colour: only on a terminal, never with NO_COLOR', () => {
    const tty = { isTTY: true } as NodeJS.WriteStream;
    const pipe = { isTTY: false } as NodeJS.WriteStream;
    delete process.env.NO_COLOR;
    expect(useColor(tty)).toBe(process.env.TERM !== 'dumb');
    expect(useColor(pipe)).toBe(false);
    process.env.NO_COLOR = '1';
    expect(useColor(tty)).toBe(false);
  });
});

describe('service dnsmasq ranges', () => {
  test.each([
    ['10.0.0.254/24', undefined, { first: '10.0.0.100', last: '10.0.0.200', netmask: '255.255.255.0' }],
    ['172.17.0.1/16', undefined, { first: '172.17.0.100', last: '172.17.0.200', netmask: '255.255.0.0' }],
    ['10.9.0.1/28', undefined, { first: '10.9.0.8', last: '10.9.0.14', netmask: '255.255.255.240' }],
    ['10.0.0.254/24', '10.0.0.10,10.0.0.20', { first: '10.0.0.10', last: '10.0.0.20', netmask: '255.255.255.0' }],
  ])('%s --range %s', (cidr, range, want) => {
    expect(dhcpRange('br0', cidr, range)).toEqual(want);
  });

  test.each([
    [null, undefined, /^interface br0 has no IPv4 address/],
    ['10.0.0.254/24', '10.0.1.10,10.0.1.20', /^--range 10\.0\.1\.10,10\.0\.1\.20: 10\.0\.1\.10 is outside br0's subnet 10\.0\.0\.0\/24$/],
    ['10.0.0.254/24', '10.0.0.20,10.0.0.10', /the first address comes after the last/],
    ['10.0.0.254/24', 'x', /expected FIRST,LAST IPv4 addresses/],
  ])('refused: %s --range %s', (cidr, range, re) => {
    expect(() => dhcpRange('br0', cidr, range)).toThrow(re);
  });
});

describe('lab summary line', () => {
  const rep = (o: object) => ({ id: '07', title: 't', ok: true, steps: [{ title: 's', commands: [], checks: [{ ok: true, text: 'c' }] }], teardown: { clean: true, errors: [] }, ...o });
  test('stopped at a --step pause: where, what held, and what was left', () => {
    expect(labSummary(rep({ stopped: { after: 1, of: 4 } }), false)).toBe('lab 07: stopped after step 1/4 (1 check held, 0 failed), torn down\n');
    expect(labSummary(rep({ stopped: { after: 2, of: 4 } }), true)).toBe('lab 07: stopped after step 2/4 (1 check held, 0 failed); left up what steps 1-2 built: nslab lab down 07\n');
    expect(labSummary(rep({}), false)).toBe('lab 07: all checks hold, torn down\n');
  });
});

describe('a DHCP client\'s failure, from its log', () => {
  test('its own error line before the usage text it printed, not the usage text', () => {
    const log = "udhcpc: unrecognized option '--bogus'\nBusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) multi-call binary.\n\nUsage: udhcpc [-fbqRB] [-a[MSEC]] [-t N] [-T SEC] [-A SEC|-n]\n\t[-i IFACE] [-s PROG] [-p PIDFILE]\n\t[-oC] [-r IP] [-V VENDOR] [-F NAME] [-x OPT:VAL]... [-O OPT]...\n\n\t-i IFACE\tInterface to use (default eth0)\n";
    expect(logError(log)).toBe("udhcpc: unrecognized option '--bogus'");
  });
  test('no lease: the failure, not the discovers before it', () => {
    const log = 'udhcpc: started, v1.35.0\nudhcpc: broadcasting discover\nudhcpc: broadcasting discover\nudhcpc: broadcasting discover\nudhcpc: no lease, failing\n';
    expect(logError(log)).toBe('udhcpc: no lease, failing');
  });
});

describe("a node's resolv.conf", () => {
  test('the host\'s nameservers without loopback ones, then a 1 s timeout and one attempt', async () => {
    const { renderResolv } = await import('../../src/engine/hosts/hosts.js');
    expect(renderResolv('# generated\nnameserver 10.255.255.53\nnameserver 127.0.0.53\nsearch example.org\noptions edns0\n')).toBe(
      "# nslab: the host's resolv.conf, loopback nameservers left out, quick to give up\nnameserver 10.255.255.53\nsearch example.org\noptions edns0\noptions timeout:1 attempts:1\n",
    );
    expect(renderResolv('nameserver 127.0.0.53\n')).toBe("# nslab: the host's resolv.conf, loopback nameservers left out, quick to give up\noptions timeout:1 attempts:1\n");
  });
});

describe('lab ls reads only the heads of the lab files', () => {
  test('the same ids, titles and notes as the full load, for every lab', async () => {
    const { labHeads, listLabs, loadLab } = await import('../../src/model/lab.js');
    const heads = await labHeads();
    const full = await Promise.all((await listLabs()).map((l) => loadLab(l.id)));
    expect(heads).toEqual(full.map((l) => ({ id: l.id, title: l.title, note: l.note })));
  });
});
