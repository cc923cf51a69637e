'use strict';
// A second `herald serve` on a device port that one already serves
// (issue 12): the gateway's workers share their port with SO_REUSEPORT,
// which let another herald (its own store, other API and admin ports)
// bind it too and take a share of the devices (10 of 12 were refused with
// 1007 by the wrong server).  Now the second one must exit at once with a
// message naming the port, and the first keep serving; two started at the
// same instant: exactly one runs.
const test = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./helpers');

function tmpDb() {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'herald-lock-')), 'h.db');
}

// Runs a `herald serve` on devPort until it either prints its push API
// line (running: stopped at the test's end) or exits.
function serve(t, devPort) {
  const args = ['serve', '--host', '127.0.0.1', '--port', String(devPort), '--api-port', '0',
    '--tars-port', '0', '--admin-port', '0', '--db', tmpDb(), '--app', `test:${h.SECRET}:${h.KEY}`,
    '--log-level', 'warn'];
  const proc = spawn(h.HERALD, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  h.live.add(proc);
  t.after(() => { if (proc.exitCode === null && !proc.signalCode) proc.kill('SIGKILL'); h.live.delete(proc); });
  let out = '', err = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { err += d; });
  const t0 = Date.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ proc, state: 'stuck', out, err }), 10000);
    proc.stdout.on('data', () => {
      const api = /push API (http:\/\/[^\s]+)/.exec(out);
      if (api) {
        clearTimeout(timer);
        resolve({ proc, state: 'running', api: api[1], out, err, ms: Date.now() - t0 });
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ proc, state: 'exited', code, out, err, ms: Date.now() - t0 });
    });
  });
}

test('a second herald serve on the same device port exits naming the port', { timeout: 30000 }, async (t) => {
  const port = await h.freePort();
  const first = await serve(t, port);
  assert.strictEqual(first.state, 'running', first.err);
  const second = await serve(t, port);
  assert.strictEqual(second.state, 'exited', `second server ${second.state}: ${second.out}`);
  assert.notStrictEqual(second.code, 0);
  assert.ok(second.ms < 5000, `took ${second.ms} ms`);
  assert.match(second.err, new RegExp(`herald serve: device port 127\\.0\\.0\\.1:${port} is in use by another process`));

  // The first one still has the port to itself: every device lands there.
  const srv = { api: first.api };
  for (let i = 0; i < 12; i++) {
    const d = new h.TcpDevice(port);
    const hello = await d.hello(h.token(`lock${i}`));
    assert.strictEqual(hello.ret, 0, `device ${i} refused with ${hello.ret}`);
    const p = await h.push(srv, { deviceId: `lock${i}`, payload: 'mine' });
    assert.strictEqual(p.json.state, 'written');
    await d.waitFor((q) => q.cmd === h.CMD.PUSH);
    d.destroy();
  }
});

test('two herald serve started at once on one device port: one runs', { timeout: 60000 }, async (t) => {
  for (let round = 0; round < 3; round++) {
    const port = await h.freePort();
    const both = await Promise.all([serve(t, port), serve(t, port)]);
    const states = both.map((b) => b.state).sort();
    assert.deepStrictEqual(states, ['exited', 'running'], both.map((b) => b.err).join('\n'));
    const loser = both.find((b) => b.state === 'exited');
    assert.match(loser.err, /is in use by another process/);
    for (const b of both) if (b.state === 'running') b.proc.kill('SIGKILL');
  }
});
