// Refusing delay/jitter/loss where the kernel has no netem, before anything is changed.
import type { Runner } from '../../exec/runner.js';
import { RecordingRunner } from '../../exec/recorder.js';
import { NslabError } from '../../errors.js';
import { describeImpair, needsNetem, netemAvailable, netemMissing } from '../../kernel/tc.js';
import type { Model } from '../../model/types.js';

/**
 * Refuses to bring up a topology whose `impair:` needs sch_netem when this kernel lacks it (probed
 * in a throwaway netns, kernel/tc.ts), so that `up` fails in one line before its first step rather than
 * half-way. A recording runner (`plan`, `--dry-run`) is not refused: the plan still prints.
 * @throws NslabError `MISSING_TOOL` naming the link, what it asks for and the missing module
 */
export async function requireNetemFor(r: Runner, m: Model): Promise<void> {
  if (r instanceof RecordingRunner) return;
  const v = m.veths.find((x) => x.impair && needsNetem(x.impair));
  if (!v) return;
  const probe = await netemAvailable(r);
  if (probe.ok) return;
  throw new NslabError('MISSING_TOOL', `link ${v.a.owner}:${v.a.name} - ${v.b.owner}:${v.b.name}: ${netemMissing(`impair ${describeImpair(v.impair!)}`)}`);
}
