'use strict';
// One client address cannot take a push API port from the others (issue
// 12): loopback has all of 127.0.0.0/8, so the flood comes from 127.0.0.2
// and the legitimate clients from 127.0.0.3.
//
//   HTTP: 1,100 slowloris connections (a partial head each, held open)
//   from one address used to hold all 1,024 places, and 18 of 18 pushes
//   from elsewhere failed with 503.  Now the address gets its share (half
//   the cap by default), the rest are answered 429 at accept, and pushes
//   from another address succeed.
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const net = require('node:net');
const h = require('./helpers');

const FLOOD = '127.0.0.2';
const LEGIT = '127.0.0.3';

async function startWithAdmin(t, extra = []) {
  const port = await h.freePort();
  const srv = await h.startServe(t, ['--admin-port', String(port), ...extra]);
  srv.admin = `http://127.0.0.1:${port}`;
  return srv;
}

async function metric(srv, name, labels = {}) {
  const text = await (await fetch(`${srv.admin}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] || '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

// POST /v1/push/device from a chosen source address, on a fresh
// connection.
function pushFrom(srv, src, body) {
  const u = new URL(srv.api);
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: u.hostname, port: Number(u.port), localAddress: src, agent: false,
      method: 'POST', path: '/v1/push/device',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${h.KEY}`,
        'content-length': Buffer.byteLength(data) },
    }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(data);
  });
}

// n connections from src that each send half a request head and hold it.
// Resolves once every one is either refused (an answer, then closed) or
// has been open for a moment without one.
async function slowloris(t, port, src, n) {
  const conns = [];
  t.after(() => { for (const c of conns) c.sock.destroy(); });
  for (let i = 0; i < n; i++) {
    const c = { text: '', closed: false };
    c.sock = net.connect({ port, host: '127.0.0.1', localAddress: src });
    c.sock.on('error', () => {});
    c.sock.on('data', (d) => { c.text += d; });
    c.sock.on('close', () => { c.closed = true; });
    c.sock.on('connect', () => c.sock.write('POST /v1/push/device HTTP/1.1\r\nHost: x\r\n'));
    conns.push(c);
    if (i % 100 === 99) await h.sleep(20); // let the accepts keep up
  }
  await h.sleep(1000);
  return conns;
}

test('HTTP API: one address holds at most its share; others still push', { timeout: 60000 }, async (t) => {
  // A long head timeout, so the flood holds its places however slow the
  // machine is (the default 10 s would free them as the test runs).
  const srv = await startWithAdmin(t, ['--head-timeout', '60']);
  const port = Number(new URL(srv.api).port);
  const conns = await slowloris(t, port, FLOOD, 1100);
  const refused = conns.filter((c) => c.text.startsWith('HTTP/1.1 429'));
  const held = conns.filter((c) => !c.closed);
  t.diagnostic(`flood of 1100: ${held.length} held, ${refused.length} answered 429`);
  assert.strictEqual(held.length, 512, 'the default share is half of api-max-conns 1024');
  assert.strictEqual(refused.length, 1100 - 512);
  const r0 = refused[0].text;
  assert.match(r0, /\r\nRetry-After: 1\r\n/);
  const body = JSON.parse(r0.slice(r0.indexOf('\r\n\r\n') + 4));
  assert.strictEqual(body.error.code, 'too_many_conns');

  const results = await Promise.all(Array.from({ length: 18 }, (_, i) =>
    pushFrom(srv, LEGIT, { deviceId: `legit${i}`, payload: 'x' })));
  assert.deepStrictEqual(results.map((r) => r.status), Array(18).fill(200),
    results.map((r) => r.text).join('\n'));
  // The flooding address itself is at its share.
  const own = await pushFrom(srv, FLOOD, { deviceId: 'flood', payload: 'x' });
  assert.strictEqual(own.status, 429);
  assert.strictEqual(own.headers['retry-after'], '1');
  assert.ok(await metric(srv, 'herald_refused_total', { what: 'push', reason: 'per_ip' }) >= 1100 - 512 + 1);
});

test('HTTP API: --api-max-conns-per-ip sets the share', { timeout: 30000 }, async (t) => {
  const srv = await startWithAdmin(t, ['--api-max-conns-per-ip', '5']);
  const port = Number(new URL(srv.api).port);
  const conns = await slowloris(t, port, FLOOD, 8);
  assert.strictEqual(conns.filter((c) => !c.closed).length, 5);
  assert.strictEqual(conns.filter((c) => c.text.startsWith('HTTP/1.1 429')).length, 3);
  // Closing some gives their places back to the address.
  for (const c of conns.filter((x) => !x.closed).slice(0, 2)) c.sock.destroy();
  await h.sleep(200);
  const again = await pushFrom(srv, FLOOD, { deviceId: 'back', payload: 'x' });
  assert.strictEqual(again.status, 200, again.text);
});
