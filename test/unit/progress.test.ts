// The progress line: shown on a terminal only, never with --json, cleared when the work is done.
import { clearProgress, progressLine } from '../../src/exec/terminal.js';
import { applySteps } from '../../src/engine/apply.js';
import { progress, setProgressSink } from '../../src/exec/progress.js';
import { RecordingRunner } from '../../src/exec/recorder.js';

function fakeStream(isTTY: boolean): NodeJS.WriteStream & { out: string } {
  const s = { isTTY, columns: 40, out: '', write(t: string) { s.out += t; return true; } };
  return s as unknown as NodeJS.WriteStream & { out: string };
}

test('on a terminal: [done/total] what, rewritten in place, cut to the width, cleared at the end', () => {
  const s = fakeStream(true);
  const line = progressLine(false, s)!;
  line(3, 34, 'add veth h1-eth0 with its peer eth0 in netns h1, MTU 1500');
  expect(s.out).toBe('\r\x1b[K[3/34] add veth h1-eth0 with its peer …'); // 39 columns: the terminal's 40 less one
  line(34, 34, 'done');
  expect(s.out.endsWith('\r\x1b[K')).toBe(true);
  clearProgress(s); // nothing shown any more: nothing written
  expect(s.out.endsWith('…\r\x1b[K')).toBe(true);
});

test('not on a pipe, not with --json', () => {
  expect(progressLine(false, fakeStream(false))).toBeNull();
  expect(progressLine(true, fakeStream(true))).toBeNull();
});

test('the engine reports to the sink only when the CLI set one, and a plan (recording runner) reports nothing', async () => {
  const seen: string[] = [];
  progress(1, 2, 'nobody listens');
  setProgressSink((d, t, w) => seen.push(`${d}/${t} ${w}`));
  try {
    progress(1, 2, 'x');
    await applySteps(new RecordingRunner(), [{ describe: 'add netns a', do: { tool: 'ip', netns: null, args: ['netns', 'add', 'a'] }, undo: [] }]);
  } finally {
    setProgressSink(null);
  }
  expect(seen).toEqual(['1/2 x']);
});
