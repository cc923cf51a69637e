'use strict';
// A real browser as a device: Debian's headless Chromium, driven by
// playwright-core, opens tests/integration/pages/push.html (served by a tiny
// HTTP server here), which connects to the gateway's WebSocket with a token
// and lists each push it receives.  A push sent through the HTTP API must
// appear on the page, and the page's ack must be accepted.
//
// Chromium and playwright-core are installed by `make deps`; when either is
// missing this test fails and says so, rather than skipping quietly.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const h = require('./helpers');

const CHROMIUM = '/usr/bin/chromium';
const PAGES = path.join(__dirname, 'pages');
const WAIT_MS = 20000;
const SHOT = path.join(h.BUILD, 'test-output', 'browser-push.png');

function loadPlaywright() {
  try {
    return require('playwright-core');
  } catch (e) {
    assert.fail('playwright-core is not installed (run `make deps`; it goes into ' +
      `tests/js/node_modules, used with NODE_PATH=tests/js/node_modules): ${e.message}`);
  }
}

// Serves the files of pages/ only (no directory walking); stopped at t.after.
async function servePages(t) {
  const server = http.createServer((req, res) => {
    const name = path.basename(new URL(req.url, 'http://x').pathname);
    const file = path.join(PAGES, name);
    if (!name.endsWith('.html') || !fs.existsSync(file)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return server.address().port;
}

test('headless Chromium shows a push received over WebSocket', { timeout: 90000 }, async (t) => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run \`make deps\` (Debian package chromium)`);
  const { chromium } = loadPlaywright();

  const srv = await h.startServe(t);
  const pagesPort = await servePages(t);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: WAIT_MS,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.after(() => browser.close());

  const page = await browser.newPage();
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  const diag = () => `\npage console:\n${consoleLines.join('\n')}\nserver stderr:\n${srv.stderr()}`;

  const device = 'browser-dev';
  const url = `http://127.0.0.1:${pagesPort}/push.html?port=${srv.devPort}` +
    `&token=${encodeURIComponent(h.token(device))}`;
  await page.goto(url, { timeout: WAIT_MS });
  try {
    await page.waitForSelector('#status[data-state="connected"]', { timeout: WAIT_MS });
  } catch (e) {
    const st = await page.textContent('#status').catch(() => '?');
    assert.fail(`page did not connect (status: ${st}): ${e.message}${diag()}`);
  }

  const payload = 'hello, browser ✓ héllo';
  const r = await h.push(srv, { deviceId: device, payload });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.state, 'written', 'the browser is online at the gateway');
  try {
    await page.waitForFunction((text) => [...document.querySelectorAll('#pushes li')]
      .some((li) => li.textContent === text), payload, { timeout: WAIT_MS });
  } catch (e) {
    assert.fail(`push did not appear on the page: ${e.message}${diag()}`);
  }
  const items = await page.$$eval('#pushes li', (lis) => lis.map((li) => ({ id: li.dataset.msgId, text: li.textContent })));
  assert.deepEqual(items, [{ id: r.json.msgId, text: payload }]);
  // The page acked the push by id and the gateway answered ret 0.
  await page.waitForFunction(() => document.getElementById('acked').textContent === '1', null, { timeout: WAIT_MS });

  fs.mkdirSync(path.dirname(SHOT), { recursive: true });
  await page.screenshot({ path: SHOT, timeout: WAIT_MS });
  const png = fs.readFileSync(SHOT);
  assert.ok(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
    'the screenshot is a PNG');
  t.diagnostic(`screenshot: ${SHOT}`);
});
