// The runner's encoders: batch lines, batch error parsing, shell quoting and the script printer.
import { batchLine, parseBatchErrors } from '../../src/exec/batch.js';
import { RecordingRunner } from '../../src/exec/recorder.js';
import { netnsArgv } from '../../src/exec/runner.js';
import { shQuote, toShellScript } from '../../src/exec/shell.js';

describe('batch lines', () => {
  test('plain arguments are joined with blanks', () => {
    expect(batchLine(['link', 'set', 'dev', 'eth0', 'up'])).toBe('link set dev eth0 up');
  });
  test('an argument with a blank is double-quoted', () => {
    expect(batchLine(['link', 'set', 'dev', 'br0', 'alias', 'nslab:a b'])).toBe('link set dev br0 alias "nslab:a b"');
  });
  test.each(['a#b', 'a"b', 'a\nb'])('refuses %j, which ip -batch cannot carry', (arg) => {
    expect(() => batchLine(['link', 'set', 'dev', arg])).toThrow(/cannot carry/);
  });
});

describe('batch errors', () => {
  test('maps each "Command failed -:N" to the 0-based line and its message', () => {
    const stderr = 'Cannot find device "nope"\nCommand failed -:2\nRTNETLINK answers: File exists\nCommand failed -:5\n';
    expect(parseBatchErrors(stderr)).toEqual([
      { index: 1, message: 'Cannot find device "nope"' },
      { index: 4, message: 'RTNETLINK answers: File exists' },
    ]);
  });
  test('no failure, no entries', () => {
    expect(parseBatchErrors('')).toEqual([]);
  });
});

describe('netns commands', () => {
  test('run through nsenter, not ip -n (ip -n copies every netns mount per call)', () => {
    expect(netnsArgv({ argv: ['ip', 'link'], netns: 'h1' })).toEqual(['nsenter', '--net=/run/netns/h1', '--', 'ip', 'link']);
    expect(netnsArgv({ argv: ['ip', 'link'] })).toEqual(['ip', 'link']);
  });
});

describe('shell printer', () => {
  test('quotes only what needs it', () => {
    expect(shQuote('10.0.0.1/24')).toBe('10.0.0.1/24');
    expect(shQuote("it's")).toBe(`'it'\\''s'`);
    expect(shQuote('')).toBe(`''`);
    expect(shQuote('a b')).toBe(`'a b'`);
  });
  test('expands batches into one ip command per line and netns commands into ip netns exec', async () => {
    const r = new RecordingRunner();
    await r.batch('ip', null, [['netns', 'add', 'h1']]);
    await r.batch('ip', 'h1', [['addr', 'add', '10.0.0.1/24', 'dev', 'eth0'], ['link', 'set', 'dev', 'eth0', 'up']]);
    await r.run({ argv: ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'], netns: 'h1' });
    const script = toShellScript(r.calls);
    expect(script.split('\n').slice(2, 6)).toEqual([
      'ip netns add h1',
      'ip -n h1 addr add 10.0.0.1/24 dev eth0',
      'ip -n h1 link set dev eth0 up',
      'ip netns exec h1 sysctl -q -w net.ipv4.ip_forward=1',
    ]);
  });
  test('a recorded failure stops a batch at that line unless forced', async () => {
    const r = new RecordingRunner((argv) => (argv.includes('bad') ? { error: 'Cannot find device "bad"' } : undefined));
    const res = await r.batch('ip', null, [['link', 'set', 'dev', 'a', 'up'], ['link', 'set', 'dev', 'bad', 'up'], ['link', 'set', 'dev', 'c', 'up']]);
    expect(res.failed).toEqual([{ index: 1, message: 'Cannot find device "bad"' }]);
    const forced = await r.batch('ip', null, [['link', 'set', 'dev', 'bad', 'up'], ['link', 'set', 'dev', 'bad', 'down']], { force: true });
    expect(forced.failed.map((f) => f.index)).toEqual([0, 1]);
  });
});
