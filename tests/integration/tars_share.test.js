'use strict';
// The TARS port against sockets that hold places without calling (issue
// 12).  64 idle sockets used to lock every TARS client out
// (`--tars-max-conns` 64) for as long as they stayed.  Now:
//   * one client address holds at most its share (half the cap by
//     default), so a client from another address (127.0.0.3) still calls;
//   * a connection without a call is closed after --tars-idle-timeout, one
//     holding a partial frame after --head-timeout; a connection that
//     keeps calling stays.
const test = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const Tars = require('@tars/stream');
const TarsPacket = require('@tars/rpc/core/rpc-tars/RequestF.js').tars;
const h = require('./helpers');

const FLOOD = '127.0.0.2';
const LEGIT = '127.0.0.3';

function pingFrame(id) {
  const req = new TarsPacket.RequestPacket();
  req.iVersion = 1;
  req.iRequestId = id;
  req.sServantName = 'herald.PushServer.PushAPIObj';
  req.sFuncName = 'tars_ping';
  req.sBuffer = new Tars.BinBuffer();
  const os = new Tars.TarsOutputStream();
  os.setHeaderLength(0);
  req._writeTo(os);
  os.setHeaderLength(os.getBinBuffer().length);
  return os.getBinBuffer().toNodeBuffer();
}

// A raw TARS connection from src: counts whole answer frames, notes when
// the server closes it.
function conn(t, port, src) {
  const c = { answers: 0, buf: Buffer.alloc(0), closedAt: 0, openedAt: Date.now() };
  c.sock = net.connect({ port, host: '127.0.0.1', localAddress: src });
  t.after(() => c.sock.destroy());
  c.sock.on('error', () => {});
  c.sock.on('data', (d) => {
    c.buf = Buffer.concat([c.buf, d]);
    while (c.buf.length >= 4 && c.buf.length >= c.buf.readUInt32BE(0)) {
      c.buf = c.buf.subarray(c.buf.readUInt32BE(0));
      c.answers++;
    }
  });
  c.closed = new Promise((r) => c.sock.on('close', () => { c.closedAt = Date.now(); r(); }));
  c.connected = new Promise((r) => c.sock.on('connect', r));
  return c;
}

async function ping(c, id) {
  const before = c.answers;
  c.sock.write(pingFrame(id));
  for (let i = 0; i < 100 && c.answers === before && !c.closedAt; i++) await h.sleep(20);
  return c.answers > before;
}

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

test('TARS: 64 idle sockets from one address do not lock out another', { timeout: 30000 }, async (t) => {
  const srv = await startWithAdmin(t);
  const idle = Array.from({ length: 64 }, () => conn(t, srv.tarsPort, FLOOD));
  await Promise.all(idle.map((c) => c.connected));
  await h.sleep(500);
  const held = idle.filter((c) => !c.closedAt).length;
  t.diagnostic(`64 idle sockets from ${FLOOD}: ${held} held`);
  assert.strictEqual(held, 32, 'the default share is half of tars-max-conns 64');
  const legit = conn(t, srv.tarsPort, LEGIT);
  await legit.connected;
  assert.ok(await ping(legit, 1), 'a client from another address is answered');
  assert.ok(await metric(srv, 'herald_refused_total', { what: 'push', reason: 'per_ip' }) >= 32);
  assert.match(srv.stderr(), /tars connection refused: address at its share/);
  // --tars-max-conns itself still bounds the whole port.
  const more = Array.from({ length: 40 }, (_, i) => conn(t, srv.tarsPort, `127.0.0.${10 + i}`));
  await Promise.all(more.map((c) => c.connected));
  await h.sleep(500);
  const open = [...idle, legit, ...more].filter((c) => !c.closedAt).length;
  assert.strictEqual(open, 64);
});

test('TARS: idle and partial-frame connections time out, busy ones stay', { timeout: 30000 }, async (t) => {
  const srv = await startWithAdmin(t, ['--tars-idle-timeout', '1', '--head-timeout', '1']);
  const idle = conn(t, srv.tarsPort, FLOOD);
  const partial = conn(t, srv.tarsPort, FLOOD);
  const busy = conn(t, srv.tarsPort, LEGIT);
  await Promise.all([idle.connected, partial.connected, busy.connected]);
  const frame = pingFrame(7);
  partial.sock.write(frame.subarray(0, 10)); // a frame that never completes
  let id = 100;
  const t0 = Date.now();
  while (Date.now() - t0 < 2600) {
    assert.ok(await ping(busy, id++), 'a connection that keeps calling is served');
    await h.sleep(300);
  }
  assert.ok(idle.closedAt, 'an idle connection is closed');
  assert.ok(partial.closedAt, 'a connection holding a partial frame is closed');
  t.diagnostic(`closed after: idle ${idle.closedAt - idle.openedAt} ms, partial frame ${partial.closedAt - partial.openedAt} ms`);
  for (const c of [idle, partial]) {
    const after = c.closedAt - c.openedAt;
    assert.ok(after >= 900 && after < 2600, `closed after ${after} ms`);
  }
  assert.ok(!busy.closedAt, 'the busy one stays');
  assert.ok(await metric(srv, 'herald_api_timeouts_total', { api: 'tars', kind: 'idle' }) >= 1);
  assert.ok(await metric(srv, 'herald_api_timeouts_total', { api: 'tars', kind: 'head' }) >= 1);
  assert.match(srv.stderr(), /tars frame not received in time, closing/);
});
