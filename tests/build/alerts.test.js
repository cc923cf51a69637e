'use strict';
// deploy/prometheus.yml and deploy/herald-alerts.yml work as shipped:
//  * promtool (Debian's prometheus package) accepts the scrape config and
//    the rule file it loads;
//  * `promtool test rules tests/build/alerts_test.yml`: the alerts fire on
//    synthetic series (fds against the limit herald reports, /readyz);
//  * every metric an alert reads is one a live `herald serve` exports at
//    /metrics, or one Prometheus makes itself for a job (up, probe_*);
//    every job="…" an alert names is a job of prometheus.yml.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const h = require('../integration/helpers');

const ROOT = path.resolve(__dirname, '..', '..');
const DEPLOY = path.join(ROOT, 'deploy');
const PROMTOOL = '/usr/bin/promtool';

function promtool(args, cwd) {
  assert.ok(fs.existsSync(PROMTOOL), `${PROMTOOL} is missing: run make deps (package prometheus)`);
  const r = spawnSync(PROMTOOL, args, { cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, `promtool ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

// The PromQL of every alert: `expr: …` on one line or a `|` block below it.
function exprs() {
  const lines = fs.readFileSync(path.join(DEPLOY, 'herald-alerts.yml'), 'utf8').split('\n');
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)expr:\s*(.*)$/.exec(lines[i]);
    if (!m) continue;
    const name = (lines.slice(0, i).reverse().find((l) => /alert:/.test(l)) || '').replace(/.*alert:\s*/, '');
    if (m[2] !== '|') { out.push({ name, expr: m[2] }); continue; }
    const body = [];
    for (i++; i < lines.length && (lines[i].trim() === '' || lines[i].search(/\S/) > m[1].length); i++) body.push(lines[i]);
    i--;
    out.push({ name, expr: body.join('\n') });
  }
  return out;
}

const PROMQL_WORDS = new Set(['sum', 'by', 'without', 'rate', 'irate', 'increase', 'clamp_min', 'clamp_max',
  'histogram_quantile', 'and', 'or', 'unless', 'offset', 'on', 'ignoring', 'group_left', 'group_right',
  'absent', 'avg', 'min', 'max', 'count', 'bool', 'topk', 'bottomk', 'delta', 'deriv', 'abs']);
// Metric names an expression reads, and the jobs it names.
function refs(expr) {
  const jobs = [...expr.matchAll(/job\s*=~?\s*"([^"]+)"/g)].map((m) => m[1]);
  const bare = expr
    .replace(/\{[^}]*\}/g, ' ')                    // label matchers
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/\[[^\]]*\]/g, ' ')                   // ranges
    .replace(/\boffset\s+\d+[smhdwy]\b/g, ' ')
    .replace(/"[^"]*"/g, ' ');
  const names = [...bare.matchAll(/(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)/g)].map((m) => m[1])
    .filter((n) => !PROMQL_WORDS.has(n) && !/^[0-9.e]+$/i.test(n));
  return { names: [...new Set(names)], jobs };
}

test('alerts: promtool accepts the shipped scrape config and rules', () => {
  const out = promtool(['check', 'config', 'prometheus.yml'], DEPLOY);
  assert.match(out, /1 rule files found/);
  promtool(['check', 'rules', 'herald-alerts.yml'], DEPLOY);
});

test('alerts: the rules fire on synthetic series (promtool test rules)', () => {
  promtool(['test', 'rules', 'alerts_test.yml'], __dirname);
});

test('alerts: every metric is exported by herald, every job is scraped', async (t) => {
  const adminPort = await h.freePort();
  await h.startServe(t, ['--admin-port', String(adminPort)]);
  let text = '';
  for (let i = 0; i < 100 && !text; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
      if (r.status === 200) text = await r.text();
    } catch (_) { await h.sleep(50); }
  }
  assert.ok(text, 'no /metrics answer');
  const families = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
  const series = new Set([...text.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/gm)].map((m) => m[1]));
  const scraped = new Set([...fs.readFileSync(path.join(DEPLOY, 'prometheus.yml'), 'utf8')
    .matchAll(/job_name:\s*['"]?([\w-]+)/g)].map((m) => m[1]));
  const all = exprs();
  assert.ok(all.length >= 15, `${all.length} alert expressions found`);
  for (const { name, expr } of all) {
    const { names, jobs } = refs(expr);
    assert.ok(names.length > 0, `${name}: no metric found in ${expr}`);
    for (const n of names) {
      if (n === 'up' || n.startsWith('probe_')) continue; // Prometheus' and the blackbox exporter's own
      const fam = n.replace(/_(bucket|sum|count)$/, '');
      assert.ok(series.has(n) && (families.has(n) || families.has(fam)),
        `${name} reads ${n}, which herald's /metrics does not export`);
    }
    for (const j of jobs) assert.ok(scraped.has(j), `${name} needs the job "${j}", which deploy/prometheus.yml lacks`);
  }
});
