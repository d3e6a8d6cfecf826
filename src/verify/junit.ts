// Results as JUnit XML (one test case per check, the failure naming what differed), for a teacher's CI
// or a grading script: verify, pingall, lab verify and lab run write it with --junit FILE.
import { XMLBuilder } from 'fast-xml-parser';
import { describeRoute } from '../kernel/route.js';
import type { Model } from '../model/types.js';
import { expectations, type Expectation } from './expect.js';
import type { Mismatch } from './diff.js';
import { describeProbe, type PingallReport } from './pingall.js';
import type { VerifyReport } from './verify.js';

/** One test case: its suite (a `<testsuite>`), name, and the failure's one line and details when it failed. */
export interface JunitCase {
  suite: string;
  name: string;
  classname?: string;
  failure?: string;
  detail?: string;
  /** Seconds it took, when known. */
  time?: number;
}

/** XML 1.0 allows no control characters but tab, newline and carriage return: they are dropped. */
function clean(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');
}

/**
 * The cases as a JUnit XML document (the Ant/Jenkins schema most CI readers take): `<testsuites>`,
 * one `<testsuite>` per suite in order of first appearance, `<failure message=...>` on failed cases.
 * Text is escaped by fast-xml-parser's builder.
 * @param title the `<testsuites name>`, e.g. `nslab verify star`
 * @returns the XML text
 */
export function toJunit(title: string, cases: JunitCase[]): string {
  const suites = [...new Set(cases.map((c) => c.suite))];
  const doc = {
    '?xml': { '@_version': '1.0', '@_encoding': 'UTF-8' },
    testsuites: {
      '@_name': clean(title),
      '@_tests': cases.length,
      '@_failures': cases.filter((c) => c.failure !== undefined).length,
      testsuite: suites.map((s) => {
        const mine = cases.filter((c) => c.suite === s);
        return {
          '@_name': clean(s),
          '@_tests': mine.length,
          '@_failures': mine.filter((c) => c.failure !== undefined).length,
          '@_errors': 0,
          testcase: mine.map((c) => ({
            '@_name': clean(c.name),
            '@_classname': clean(c.classname ?? s),
            ...(c.time !== undefined ? { '@_time': c.time.toFixed(3) } : {}),
            ...(c.failure !== undefined ? { failure: { '@_message': clean(c.failure), '#text': clean(c.detail ?? c.failure) } } : {}),
          })),
        };
      }),
    },
  };
  return new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', format: true, suppressEmptyNode: true }).build(doc) as string;
}

/** A test case's name for an expectation of verify: `h1: eth0 (veth)`, `r: route default via 10.0.1.254`. */
export function expectationName(e: Expectation): string {
  switch (e.kind) {
    case 'netns':
      return `${e.owner}: netns ${e.netns}`;
    case 'link':
      return `${e.owner}: ${e.ifname}${e.linkKind ? ` (${e.linkKind})` : ''}`;
    case 'only-links':
      return `${e.owner}: no interface but ${e.ifnames.join(', ')}`;
    case 'only-ports':
      return `${e.owner}: no port but ${e.ports.join(', ') || 'none'}`;
    case 'route':
      return `${e.owner}: route ${describeRoute(e.route)}`;
    case 'sysctl':
      return `${e.owner}: sysctl ${e.key}=${e.value}`;
    case 'qdisc':
      return `${e.owner}: ${e.ifname} impairment (tc)`;
  }
}

/** Whether a mismatch belongs to an expectation (the same owner and interface, route or key). */
function belongs(x: Mismatch, e: Expectation): boolean {
  if (x.owner !== e.owner) return false;
  switch (x.kind) {
    case 'netns-missing':
      return e.kind === 'netns';
    case 'link-extra':
      return e.kind === 'only-links';
    case 'port-extra':
      return e.kind === 'only-ports';
    case 'route-missing':
    case 'route-wrong':
      return e.kind === 'route' && (x.expected === describeRoute(e.route) || x.message.includes(describeRoute(e.route)));
    case 'sysctl':
      return e.kind === 'sysctl' && x.message.includes(e.key);
    case 'qdisc':
      return e.kind === 'qdisc' && e.ifname === x.ifname;
    default:
      return e.kind === 'link' && e.ifname === x.ifname;
  }
}

/**
 * verify's report as test cases: one per fact checked (the model's expectations), failed with the
 * mismatch lines that belong to it; a mismatch that belongs to none gets a case of its own.
 */
export function verifyCases(m: Model, rep: VerifyReport): JunitCase[] {
  const suite = `verify ${rep.topology}`;
  const used = new Set<Mismatch>();
  const cases = expectations(m).map((e): JunitCase => {
    const mine = rep.mismatches.filter((x) => !used.has(x) && belongs(x, e));
    mine.forEach((x) => used.add(x));
    return { suite, name: expectationName(e), classname: `${suite}.${e.owner}`, ...(mine.length ? { failure: mine[0]!.message, detail: mine.map((x) => `${x.message}\n  expected: ${x.expected ?? 'nothing'}\n  actual: ${x.actual ?? 'nothing'}`).join('\n') } : {}) };
  });
  for (const x of rep.mismatches) if (!used.has(x)) cases.push({ suite, name: `${x.owner}: ${x.kind}${x.ifname ? ` ${x.ifname}` : ''}`, failure: x.message, detail: `expected: ${x.expected ?? 'nothing'}\nactual: ${x.actual ?? 'nothing'}` });
  return cases;
}

/** pingall's report as test cases: one per probe (`h1 -> 10.0.0.2 (h2:eth0)`), failed when it went against the model. */
export function pingallCases(rep: PingallReport): JunitCase[] {
  const suite = `pingall ${rep.topology}`;
  return rep.results.map((x) => {
    const at = x.owner === x.ifname ? x.owner : `${x.owner}:${x.ifname}`;
    const bad = x.expected !== null && x.expected !== x.reached;
    return { suite, classname: `${suite}.${x.from}`, name: `${x.from} -> ${x.to} (${at}) ${x.expected === false ? 'unreachable' : 'reachable'}`, ...(bad ? { failure: describeProbe(x) } : {}) };
  });
}

/** A lab's checks (lab verify, or one step of lab run) as test cases. */
export function checkCases(suite: string, checks: Array<{ ok: boolean; text: string; detail?: string }>): JunitCase[] {
  return checks.map((c) => ({ suite, name: c.text, ...(c.ok ? {} : { failure: c.detail ? `${c.text}: ${c.detail}` : c.text, detail: c.detail ?? c.text }) }));
}
