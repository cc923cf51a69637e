// herald dashboard: polls /api/stats every second, keeps five minutes of
// points and draws them with uPlot (served by herald itself: no internet).
// The data arrays are on window.heraldDash so tests can check them.
'use strict';
(function () {
  const KEEP = 300;            // points: 5 minutes at one per second
  const POLL_MS = 1000;
  const CMDS = ['hello', 'heartbeat', 'ack', 'subscribe', 'unsubscribe', 'sync'];
  const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

  const data = {
    t: [], conns: [], pushes: [], deliveries: [], p50: [], p99: [],
    errors: Object.fromEntries(CMDS.map((c) => [c, []])),
  };
  const dash = { data, charts: {}, polls: 0, errors: 0, last: null };
  window.heraldDash = dash;

  const $ = (id) => document.getElementById(id);

  function width(el) { return Math.max(300, el.clientWidth - 4); }

  function makeChart(id, series, yLabel, yRange) {
    const el = $(id);
    const opts = {
      width: width(el), height: 220,
      scales: { x: { time: true }, y: yRange ? { range: yRange } : {} },
      axes: [{}, { label: yLabel, size: 60 }],
      series: [{}].concat(series.map((s, i) => ({
        label: s, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true,
      }))),
    };
    return new uPlot(opts, [[]].concat(series.map(() => [])), el);
  }

  function setupCharts() {
    if (typeof uPlot === 'undefined') {
      for (const el of document.querySelectorAll('.chart')) {
        el.innerHTML = '<p class="missing">uPlot is not embedded in this build (run <code>make deps</code>, then rebuild).</p>';
      }
      return false;
    }
    dash.charts.conns = makeChart('chart-conns', ['connections'], 'sessions');
    dash.charts.rates = makeChart('chart-rates', ['pushes/s', 'deliveries/s'], 'per second');
    dash.charts.latency = makeChart('chart-latency', ['p50', 'p99'], 'ms');
    dash.charts.errors = makeChart('chart-errors', CMDS, 'error ratio', [0, 1]);
    window.addEventListener('resize', () => {
      for (const c of Object.values(dash.charts)) c.setSize({ width: width(c.root.parentNode), height: 220 });
    });
    return true;
  }

  function push(arr, v) {
    arr.push(v);
    if (arr.length > KEEP) arr.shift();
  }

  function record(s) {
    push(data.t, s.ts / 1000);
    push(data.conns, s.connections);
    push(data.pushes, s.pushes_per_s);
    push(data.deliveries, s.deliveries_per_s);
    push(data.p50, s.delivery_latency_ms.p50);
    push(data.p99, s.delivery_latency_ms.p99);
    for (const c of CMDS) {
      const e = s.commands[c];
      push(data.errors[c], e && e.window ? e.error_rate : null);
    }
  }

  function redraw() {
    const ch = dash.charts;
    if (!ch.conns) return;
    ch.conns.setData([data.t, data.conns]);
    ch.rates.setData([data.t, data.pushes, data.deliveries]);
    ch.latency.setData([data.t, data.p50, data.p99]);
    ch.errors.setData([data.t].concat(CMDS.map((c) => data.errors[c])));
  }

  function kpis(s) {
    $('kpi-conns').textContent = s.connections;
    $('kpi-pushes').textContent = s.totals.pushes;
    $('kpi-deliveries').textContent = s.totals.deliveries;
  }

  async function poll() {
    try {
      const r = await fetch('/api/stats', { cache: 'no-store' });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const s = await r.json();
      dash.last = s;
      dash.polls++;
      record(s);
      redraw();
      kpis(s);
      $('status').dataset.state = s.draining ? 'draining' : 'live';
      $('status').textContent = s.draining ? 'draining' : 'live';
    } catch (e) {
      dash.errors++;
      $('status').dataset.state = 'error';
      $('status').textContent = `stats unavailable: ${e.message}`;
    }
  }

  // ---- message timeline ---------------------------------------------------

  function el(tag, text) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function fmtTime(v) {
    if (typeof v !== 'number') return String(v);
    // milliseconds since the epoch (or seconds, if small)
    const d = new Date(v < 1e11 ? v * 1000 : v);
    return d.toISOString().replace('T', ' ').replace('Z', '');
  }

  // GET /api/messages/ID answers what the push API's GET /v1/messages/ID
  // does: a timeline object keyed by event, in the order a message lives
  // them.  The table shows the events that happened.
  function steps(j) {
    const tl = j && j.timeline;
    if (!tl || typeof tl !== 'object' || Array.isArray(tl)) return null;
    return Object.entries(tl)
      .filter(([, v]) => v && (v.at > 0 || v.count > 0))
      .map(([step, v]) => ({ step, at: v.at > 0 ? v.at : null, count: v.count }));
  }

  function renderTimeline(box, j) {
    box.replaceChildren();
    const list = steps(j);
    if (!list) {
      box.append(el('pre', JSON.stringify(j, null, 2)));
      return;
    }
    const keys = [...new Set(list.flatMap((s) => Object.keys(s)))];
    const table = el('table');
    const head = el('tr');
    for (const k of keys) head.append(el('th', k));
    table.append(head);
    for (const s of list) {
      const tr = el('tr');
      tr.className = 'step';
      for (const k of keys) {
        const v = s[k];
        const timeish = /(^at|_ms$|^ts$|time)/i.test(k);
        tr.append(el('td', v === undefined || v === null ? '-' : timeish ? fmtTime(v) : typeof v === 'object' ? JSON.stringify(v) : String(v)));
      }
      table.append(tr);
    }
    box.append(table);
  }

  async function lookup(id) {
    const box = $('timeline');
    box.dataset.state = 'loading';
    box.textContent = 'looking up…';
    try {
      const r = await fetch(`/api/messages/${encodeURIComponent(id)}`, { cache: 'no-store' });
      const j = await r.json().catch(() => ({}));
      if (r.status === 200) {
        box.dataset.state = 'found';
        renderTimeline(box, j);
      } else if (r.status === 501) {
        box.dataset.state = 'not-available';
        box.replaceChildren(el('p', 'not available: message tracing is not wired into this server yet'));
      } else if (r.status === 404) {
        box.dataset.state = 'unknown';
        box.replaceChildren(el('p', `unknown message id ${id}`));
      } else {
        box.dataset.state = 'error';
        box.replaceChildren(el('p', `lookup failed: ${j.error || `HTTP ${r.status}`}`));
      }
    } catch (e) {
      box.dataset.state = 'error';
      box.textContent = `lookup failed: ${e.message}`;
    }
    dash.timeline = { id, state: box.dataset.state };
  }

  function start() {
    setupCharts();
    $('lookup').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const id = $('msg-id').value.trim();
      if (id) lookup(id);
    });
    const q = new URLSearchParams(location.search).get('msg');
    if (q) { $('msg-id').value = q; lookup(q); }
    poll();
    setInterval(poll, POLL_MS);
  }

  dash.lookup = lookup;
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
