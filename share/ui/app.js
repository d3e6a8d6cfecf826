// nslab ui, in the browser: draws graphviz's SVG, then follows /api/events (one state a second) to colour
// each link and fill the interface table; pingall, link down/up and captures through the same server.
'use strict';
const token = new URLSearchParams(location.search).get('token') || '';
const q = (path, params = {}) => `${path}?${new URLSearchParams({ token, ...params })}`;

const fmt = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : `${Math.round(n)}`);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (k === 'onclick') e.onclick = v; else e.setAttribute(k, v);
  for (const k of kids) e.append(k);
  return e;
};

let model = null;

async function load() {
  model = await (await fetch(q('/api/model'))).json();
  document.getElementById('title').textContent = `nslab ui: ${model.title}`;
  document.title = `nslab ui: ${model.title}`;
  const svg = await fetch(q('/graph.svg'));
  document.getElementById('graph').innerHTML = svg.ok ? await svg.text() : `<p>${await svg.text()}</p>`;
  const links = document.querySelector('#links tbody');
  for (const l of model.links) {
    const name = l.ends.map((e) => `${e.node}:${e.ifname}${e.vlan !== null ? ` (tag ${e.vlan})` : ''}`).join(' — ');
    // The end taken down and up: a node's own end (its netns), else the first.
    const end = l.ends.find((e) => !e.key.startsWith('-:')) || l.ends[0];
    const act = (action) => async () => {
      const r = await fetch(q('/api/link', { end: end.key, action }), { method: 'POST' });
      if (!r.ok) alert((await r.json()).error);
    };
    links.append(
      el('tr', { id: `row-${l.id}`, 'data-link': l.id },
        el('td', {}, name),
        el('td', { class: 'state' }, '?'),
        el('td', {},
          el('button', { class: 'down-btn', onclick: act('down') }, 'down'),
          el('button', { class: 'up-btn', onclick: act('up') }, 'up'),
          el('a', { class: 'capture', href: q('/api/capture', { end: end.key, seconds: '10' }), download: `${end.node}-${end.ifname}.pcap` }, 'capture 10 s'))));
  }
  const ifaces = document.querySelector('#ifaces tbody');
  for (const e of model.ends) {
    ifaces.append(el('tr', { 'data-key': e.key },
      el('td', {}, `${e.node}:${e.ifname}`), el('td', { class: 'state' }, '?'), el('td', { class: 'tag' }, e.vlan === null ? '' : String(e.vlan)), el('td', { class: 'addrs' }, ''),
      ...['rxPps', 'txPps', 'rxBps', 'txBps', 'rxPackets', 'txPackets'].map((f) => el('td', { class: `num ${f}` }, '0'))));
  }
  follow();
}

function follow() {
  const es = new EventSource(q('/api/events'));
  const status = document.getElementById('status');
  es.onopen = () => (status.textContent = 'live');
  es.onerror = () => (status.textContent = 'disconnected: is nslab ui still running?');
  es.onmessage = (ev) => {
    const tick = JSON.parse(ev.data);
    const by = new Map(tick.ends.map((e) => [e.key, e]));
    for (const tr of document.querySelectorAll('#ifaces tbody tr')) {
      const s = by.get(tr.dataset.key);
      if (!s) continue;
      const st = tr.querySelector('.state');
      st.textContent = s.present ? (s.up ? 'up' : s.adminUp ? `no carrier (${s.operstate})` : 'down') : 'absent';
      st.className = `state ${s.up ? 'up' : 'down'}`;
      tr.querySelector('.tag').textContent = s.tag === null ? '' : String(s.tag);
      tr.querySelector('.addrs').textContent = s.addresses.join(' ');
      for (const f of ['rxPps', 'txPps', 'rxBps', 'txBps', 'rxPackets', 'txPackets']) tr.querySelector(`.${f}`).textContent = f.endsWith('Packets') ? String(s[f]) : fmt(s[f]);
    }
    for (const l of model.links) {
      const up = l.ends.every((e) => by.get(e.key)?.up);
      const g = document.getElementById(l.id);
      if (g) { g.classList.toggle('link-down', !up); g.classList.toggle('link-up', up); }
      const row = document.getElementById(`row-${l.id}`);
      row.dataset.state = up ? 'up' : 'down';
      const st = row.querySelector('.state');
      st.textContent = up ? 'up' : 'down';
      st.className = `state ${up ? 'up' : 'down'}`;
    }
    status.textContent = `live, ${new Date(tick.at).toLocaleTimeString()}`;
  };
}

document.getElementById('pingall').onclick = async () => {
  const s = document.getElementById('pingall-status');
  s.textContent = 'probing…';
  const rep = await (await fetch(q('/api/pingall'), { method: 'POST' })).json();
  if (rep.error) { s.textContent = rep.error; return; }
  const cols = rep.targets.map((t) => `${t.owner === t.ifname ? t.owner : `${t.owner}:${t.ifname}`} ${t.address}`);
  const table = el('table', { id: 'matrix-table' }, el('tr', {}, el('th', {}, 'from \\ to'), ...cols.map((c) => el('th', {}, c))));
  for (const src of rep.sources) {
    const row = el('tr', {}, el('th', {}, src));
    for (const t of rep.targets) {
      const x = rep.results.find((y) => y.from === src && y.to === t.address);
      if (!x) { row.append(el('td', {}, '·')); continue; }
      const bad = x.expected !== null && x.expected !== x.reached;
      row.append(el('td', { class: bad ? 'bad' : x.reached ? 'ok' : 'no', title: x.reason }, x.reached ? '✓' : '✗'));
    }
    table.append(row);
  }
  const box = document.getElementById('matrix');
  box.replaceChildren(table);
  s.textContent = `${rep.ok ? 'all as expected' : 'differences (red)'} in ${(rep.ms / 1000).toFixed(1)} s`;
};

load();
