// Renders what vagrant/verify.sh collected from each VM (`nslab verify --json` and `nslab pingall --json`
// between @@nslab markers) as one table across hosts, JSON, or JUnit XML; exits 1 when anything failed.
// node vagrant/report.mjs table|json|junit HOST=FILE [HOST=FILE ...]
import { readFileSync } from 'node:fs';
import Table from 'cli-table3';

const [format, ...inputs] = process.argv.slice(2);
if (!['table', 'json', 'junit'].includes(format) || inputs.length === 0 || inputs.some((a) => !a.includes('='))) {
  process.stderr.write(`report.mjs: usage: report.mjs table|json|junit HOST=FILE ...; got: ${process.argv.slice(2).join(' ') || 'nothing'}\n`);
  process.exit(2);
}

/** The sections of one VM's output: marker name -> text (`@@nslab verify`, `@@nslab pingall`, `@@nslab end`). */
function sections(text) {
  const out = {};
  let cur = null;
  for (const line of text.split('\n')) {
    const m = /^@@nslab (\w+)\s*$/.exec(line);
    if (m) out[(cur = m[1])] = '';
    else if (cur) out[cur] += line + '\n';
  }
  return out;
}

/** A section as the command's JSON report, or an `{ ok: false, error }` saying why there is none. */
function report(sec, name, stderr) {
  if (sec[name] === undefined) return { ok: false, error: { message: `no ${name} output (${lastLine(stderr) || 'vagrant ssh failed'})` } };
  try {
    return JSON.parse(sec[name]);
  } catch {
    return { ok: false, error: { message: `${name} printed no JSON: ${lastLine(sec[name]) || 'nothing'}` } };
  }
}

function lastLine(s) {
  return (s ?? '').trim().split('\n').filter(Boolean).pop() ?? '';
}

const hosts = {};
const rows = [];
for (const arg of inputs) {
  const i = arg.indexOf('=');
  const host = arg.slice(0, i);
  const file = arg.slice(i + 1);
  const text = readFileSync(file, 'utf8');
  let stderr = '';
  try {
    stderr = readFileSync(`${file}.err`, 'utf8');
  } catch {
    // verify.sh keeps stderr next to the output; without it the message is shorter
  }
  const sec = sections(text);
  const verify = report(sec, 'verify', stderr);
  const pingall = report(sec, 'pingall', stderr);
  hosts[host] = { verify, pingall };

  if (verify.error) rows.push({ host, check: 'verify', ok: false, node: null, ifname: null, detail: verify.error.message });
  else if (verify.ok) rows.push({ host, check: 'verify', ok: true, node: null, ifname: null, detail: `${verify.topology}: ${verify.checked} facts checked` });
  else for (const x of verify.mismatches) rows.push({ host, check: `verify ${x.kind}`, ok: false, node: x.owner, ifname: x.ifname, detail: x.message });

  if (pingall.error) rows.push({ host, check: 'pingall', ok: false, node: null, ifname: null, detail: pingall.error.message });
  else if (pingall.ok) rows.push({ host, check: 'pingall', ok: true, node: null, ifname: null, detail: `${pingall.results.length} probes as expected (${pingall.tool})` });
  else
    for (const d of pingall.differences)
      rows.push({
        host,
        check: 'pingall',
        ok: false,
        node: d.from,
        ifname: null,
        detail: `${d.from} -> ${d.to} (${d.owner}: ${d.ifname}): ${d.expected ? 'should answer' : 'should not answer'}, ${d.reached ? 'answered' : 'no answer'} (${d.reason})`,
      });
}
const failed = rows.filter((r) => !r.ok);

const xml = (s) => String(s).replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]);
switch (format) {
  case 'json':
    process.stdout.write(JSON.stringify({ ok: failed.length === 0, rows, hosts }, null, 2) + '\n');
    break;
  case 'junit': {
    const out = [`<?xml version="1.0" encoding="UTF-8"?>`, `<testsuites name="nslab" tests="${rows.length}" failures="${failed.length}">`];
    for (const host of Object.keys(hosts)) {
      const mine = rows.filter((r) => r.host === host);
      out.push(`  <testsuite name="${xml(host)}" tests="${mine.length}" failures="${mine.filter((r) => !r.ok).length}">`);
      for (const r of mine) {
        const name = r.ok ? r.check : r.detail;
        if (r.ok) out.push(`    <testcase classname="${xml(`${host}.${r.check}`)}" name="${xml(name)}"/>`);
        else out.push(`    <testcase classname="${xml(`${host}.${r.check.split(' ')[0]}`)}" name="${xml(name)}">`, `      <failure message="${xml(r.detail)}" type="${xml(r.check)}"/>`, '    </testcase>');
      }
      out.push('  </testsuite>');
    }
    out.push('</testsuites>');
    process.stdout.write(out.join('\n') + '\n');
    break;
  }
  case 'table': {
    const t = new Table({ head: ['host', 'check', 'ok', 'detail'], style: { head: [], border: [] }, chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' } });
    for (const r of rows) t.push([r.host, r.check, r.ok ? '✓' : '✗', r.detail]);
    process.stdout.write(t.toString() + '\n');
    const n = Object.keys(hosts).length;
    process.stdout.write(failed.length === 0 ? `ok: ${n} host(s), ${rows.length} checks passed\n` : `FAILED: ${failed.length} of ${rows.length} checks on ${[...new Set(failed.map((r) => r.host))].join(', ')}\n`);
    break;
  }
}
process.exitCode = failed.length === 0 ? 0 : 1;
