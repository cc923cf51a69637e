'use strict';
// The /dashboard page of a real `herald serve`, in Debian's headless
// Chromium (playwright-core): after a workload (a raw TCP device, pushes
// through the HTTP API), the uPlot charts exist and the page's data arrays
// (window.heraldDash) hold the figures; a message id from a push is looked
// up in the timeline box; a screenshot goes to the test output folder,
// $HERALD_BUILD/test-output/dashboard.png.  The page needs no internet: all
// its files come from herald's admin port.  Together with
// tests/build/assets.test.js (the first build of a fresh clone embeds
// uPlot) this is the check that a first `make run` shows live charts.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./helpers');

const CHROMIUM = '/usr/bin/chromium';
const WAIT_MS = 20000;
const SHOT = path.join(h.BUILD, 'test-output', 'dashboard.png');

async function waitHealthy(url) {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).status === 200) return;
    } catch (_) { /* not up yet */ }
    await h.sleep(50);
  }
  throw new Error(`admin listener at ${url} did not answer`);
}

function loadPlaywright() {
  try {
    return require('playwright-core');
  } catch (e) {
    assert.fail(`playwright-core is not installed (run \`make deps\`): ${e.message}`);
  }
}

test('the dashboard charts live figures and looks up a message', { timeout: 120000 }, async (t) => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run \`make deps\``);
  const { chromium } = loadPlaywright();
  const adminPort = await h.freePort();
  const srv = await h.startServe(t, ['--admin-port', String(adminPort)]);
  const admin = `http://127.0.0.1:${adminPort}`;
  await waitHealthy(admin);

  const dev = new h.TcpDevice(srv.devPort);
  t.after(() => dev.destroy());
  assert.equal((await dev.hello(h.token('dash-1'))).ret, 0);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: WAIT_MS,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const consoleLines = [];
  const outside = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  page.on('request', (r) => { if (!r.url().startsWith(admin)) outside.push(r.url()); });
  const diag = () => `\npage console:\n${consoleLines.join('\n')}\nserver stderr:\n${srv.stderr()}`;

  await page.goto(`${admin}/dashboard`, { timeout: WAIT_MS });
  await page.waitForFunction(() => window.heraldDash && window.heraldDash.polls >= 1, null, { timeout: WAIT_MS })
    .catch((e) => assert.fail(`the page never polled /api/stats: ${e.message}${diag()}`));

  // The workload, while the page watches.
  let msgId;
  for (let i = 0; i < 5; i++) {
    const r = await h.push(srv, { deviceId: 'dash-1', payload: `dash ${i}` });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    msgId = r.json.msgId;
    await dev.waitFor((p) => p.cmd === h.CMD.PUSH);
  }
  dev.send(h.CMD.HEARTBEAT, 'HeartbeatReq', { interval: 60 }, 7);
  await dev.waitFor((p) => p.cmd === h.CMD.HEARTBEAT);

  try {
    await page.waitForFunction(() => {
      const d = window.heraldDash.data;
      return d.t.length >= 3 && d.deliveries.some((v) => v > 0) &&
        d.p50.some((v) => v !== null) && d.conns[d.conns.length - 1] === 1;
    }, null, { timeout: WAIT_MS });
  } catch (e) {
    const d = await page.evaluate(() => JSON.stringify(window.heraldDash.data));
    assert.fail(`the charts' data did not fill: ${e.message}\ndata: ${d}${diag()}`);
  }
  const shape = await page.evaluate(() => ({
    canvases: document.querySelectorAll('.uplot canvas').length,
    charts: Object.keys(window.heraldDash.charts).length,
    points: window.heraldDash.data.t.length,
    conns: document.getElementById('kpi-conns').textContent,
    deliveries: Number(document.getElementById('kpi-deliveries').textContent),
    p99: window.heraldDash.data.p99.filter((v) => v !== null),
    hbErrors: window.heraldDash.data.errors.heartbeat.filter((v) => v !== null),
  }));
  assert.equal(shape.charts, 4, 'connections, rates, latency, errors');
  assert.ok(shape.canvases >= 4, `uPlot drew ${shape.canvases} canvases`);
  assert.equal(shape.conns, '1');
  assert.ok(shape.deliveries >= 5);
  assert.ok(shape.p99.length > 0 && shape.p99.every((v) => v >= 0));
  assert.ok(shape.hbErrors.length > 0 && shape.hbErrors.every((v) => v === 0),
    'heartbeats answered ok: error rate 0');
  assert.deepEqual(outside, [], 'every request stays on the admin port');

  fs.mkdirSync(path.dirname(SHOT), { recursive: true });
  await page.screenshot({ path: SHOT, fullPage: true, timeout: WAIT_MS });
  const png = fs.readFileSync(SHOT);
  assert.ok(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])));
  t.diagnostic(`screenshot: ${SHOT}`);

  await t.test('message timeline lookup', async () => {
    await page.fill('#msg-id', msgId);
    await page.click('#lookup button');
    await page.waitForFunction(() => !['idle', 'loading'].includes(document.getElementById('timeline').dataset.state),
      null, { timeout: WAIT_MS });
    const tl = await page.evaluate(() => ({
      state: document.getElementById('timeline').dataset.state,
      text: document.getElementById('timeline').textContent,
    }));
    await page.screenshot({ path: SHOT, fullPage: true, timeout: WAIT_MS });
    assert.equal(tl.state, 'found', `lookup of ${msgId}: ${tl.text}`);
    const steps = await page.$$eval('#timeline tr.step td:first-child', (tds) => tds.map((td) => td.textContent));
    assert.equal(steps[0], 'accepted', `the timeline starts when the API accepted it: ${tl.text}`);
    assert.ok(steps.includes('written'), `the online device's write is on the timeline: ${steps}`);
  });
});
