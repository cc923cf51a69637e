'use strict';
// bench/chart.sh (what `make bench` draws after a run): a run's output,
// noise lines and all, becomes one valid SVG (xmllint) holding each
// series, herald beside each peer, and each figure as a bar label; a file
// without figures is refused.  And bench/results.svg, the chart
// bench/RESULTS.md shows, holds every figure of bench/results-latest.txt
// (the recorded runs it was drawn from).
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const CHART = path.join(ROOT, 'bench', 'chart.sh');

const SAMPLE = `bench: 2026-12-08T01:00:00Z 6.18.0, 2 cores, N=2000 M=5 payload=64
+ herald bench --target herald ...
connect+auth      2000 in 0.05 s
RESULT target=herald transport=tcp conns=2000 procs=2 connected=2000 failed=0 connect_s=0.050 connect_rate=40000 rss_per_conn=700 anon_per_conn=511 private_per_conn=400 ksock_per_conn=0 msgs=5 payload=64 delivered=10000 missing=0 fanout_ms_max=12.50 deliveries_per_s=800000 cpu_us_per_delivery=3.10 gen_cpu_us_per_delivery=2.00 closed=0
RESULT target=herald transport=ws conns=2000 procs=2 connected=2000 failed=0 connect_s=0.060 connect_rate=33333 anon_per_conn=560 msgs=5 payload=64 delivered=10000 missing=0 fanout_ms_max=13.75 deliveries_per_s=700000 cpu_us_per_delivery=3.40
RESULT target=mosquitto transport=mqtt conns=2000 procs=2 connected=2000 failed=0 connect_s=0.300 connect_rate=6667 anon_per_conn=850 msgs=5 payload=64 delivered=10000 missing=0 fanout_ms_max=99.00 cpu_us_per_delivery=31.00
RESULT target=nchan transport=ws conns=2000 procs=2 connected=2000 failed=0 connect_s=0.030 connect_rate=66000 anon_per_conn=10400 msgs=5 payload=64 delivered=10000 missing=0 fanout_ms_max=20.00 cpu_us_per_delivery=7.00
push_load: measured 5.00 s: 150000 OK (30000/s)
push_load http: 30123 pushes/s, p50 3.44 ms, p99 7.92 ms, max 12.43 ms, errors 0, server 39.5 us CPU/push, client 11.4 us CPU/push
push_load tars: 32456 pushes/s, p50 3.15 ms, p99 8.11 ms, max 9.00 ms, errors 0, server 35.6 us CPU/push, client 10.2 us CPU/push
`;

function chart(input, t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-chart-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'run.txt'), input);
  const svg = path.join(dir, 'run.svg');
  const r = spawnSync('sh', [CHART, path.join(dir, 'run.txt'), svg], { encoding: 'utf8' });
  return { r, svg };
}

// The texts of the SVG's <text> elements.
function texts(svgText) {
  return [...svgText.matchAll(/<text[^>]*>([\s\S]*?)<\/text>/g)]
    .map((m) => m[1].replace(/<[^>]+>/g, '').replace(/&amp;/g, '&').replace(/&lt;/g, '<').trim());
}

function valid(svg) {
  execFileSync('xmllint', ['--noout', svg], { stdio: ['ignore', 'pipe', 'pipe'] });
  const s = fs.readFileSync(svg, 'utf8');
  assert.match(s, /<svg[\s\S]*<\/svg>\s*$/);
  return s;
}

test('bench chart: a run becomes one SVG with every series and figure', (t) => {
  const { r, svg } = chart(SAMPLE, t);
  assert.equal(r.status, 0, r.stderr);
  const tx = texts(valid(svg));
  for (const s of ['herald raw TCP', 'herald WebSocket', 'Mosquitto', 'nginx+Nchan', 'herald HTTP', 'herald TARS']) {
    assert.ok(tx.includes(s), `series ${s} in the chart: ${tx.join(' | ')}`);
  }
  for (const v of ['511', '560', '850', '10400', '3.10', '31.00', '12.5', '99.0', '40000', '66000', '30123', '32456']) {
    assert.ok(tx.includes(v), `figure ${v} labelled: ${tx.join(' | ')}`);
  }
  for (const p of ['memory per idle connection', 'server CPU per delivery', 'time to the last device', 'connect + auth rate', 'durable pushes']) {
    assert.ok(tx.some((x) => x.includes(p)), `panel ${p}`);
  }
});

test('bench chart: a run without figures is refused', (t) => {
  const { r, svg } = chart('bench: herald serve did not start\n', t);
  assert.equal(r.status, 1, r.stderr);
  assert.ok(!fs.existsSync(svg));
});

test('bench chart: bench/results.svg shows the figures of bench/results-latest.txt', () => {
  const src = fs.readFileSync(path.join(ROOT, 'bench', 'results-latest.txt'), 'utf8');
  const tx = texts(valid(path.join(ROOT, 'bench', 'results.svg')));
  const want = [];
  const fmt = { anon_per_conn: 0, cpu_us_per_delivery: 2, fanout_ms_max: 1, connect_rate: 0 };
  for (const line of src.split('\n')) {
    if (line.startsWith('RESULT ')) {
      const kv = Object.fromEntries(line.split(' ').slice(1).map((p) => p.split('=')));
      for (const [k, d] of Object.entries(fmt)) if (k in kv) want.push(Number(kv[k]).toFixed(d));
    }
    const m = /^push_load (?:http|tars): (\d+) pushes\/s/.exec(line);
    if (m) want.push(m[1]);
  }
  assert.ok(want.length >= 18, `${want.length} figures in results-latest.txt`);
  for (const v of want) assert.ok(tx.includes(v), `bench/results.svg lacks ${v}: redraw it with bench/chart.sh`);
  const md = fs.readFileSync(path.join(ROOT, 'bench', 'RESULTS.md'), 'utf8');
  assert.match(md, /!\[[^\]]*\]\(results\.svg\)/, 'RESULTS.md shows results.svg');
});
