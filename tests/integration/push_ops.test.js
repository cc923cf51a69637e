'use strict';
// End to end: the four PushAPI operations through HTTP and through the real
// @tars/rpc client (iVersion 1), delivered to devices that are the npm `ws`
// client and `herald listen` processes: online devices, offline devices that
// connect later (inbox for single/multi, broadcast timeline for pushAll),
// devices that drop before acking, pushAllOnline never reaching a device
// that connects afterwards, and idempotency (also across a restart).
//
//   HERALD_BUILD=build NODE_PATH=$PWD/tests/js/node_modules \
//     node --test --test-concurrency=1 tests/integration/push_ops.test.js
const test = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const WebSocket = require('ws');
const Tars = require('@tars/stream');
const rpc = require('@tars/rpc');
const h = require('./helpers');

test.after(() => rpc.client.destroy());

// ---- PushAPI structs and proxy, written by hand from protocol/PushAPI.jce ----
// (tars2node is not installable; this is an independent reading of the IDL.)

const T = {
  string: (d = '') => ({ def: () => d, w: (os, t, v) => os.writeString(t, v), r: (is, t, q) => is.readString(t, q, d) }),
  int32: (d = 0) => ({ def: () => d, w: (os, t, v) => os.writeInt32(t, v), r: (is, t, q) => is.readInt32(t, q, d) }),
  int64: (d = 0) => ({ def: () => d, w: (os, t, v) => os.writeInt64(t, v), r: (is, t, q) => is.readInt64(t, q, d) }),
  bool: (d = false) => ({ def: () => d, w: (os, t, v) => os.writeBoolean(t, v), r: (is, t, q) => is.readBoolean(t, q, d) }),
  bytes: () => ({ def: () => new Tars.BinBuffer(), w: (os, t, v) => os.writeBytes(t, v), r: (is, t, q) => is.readBytes(t, q, Tars.BinBuffer) }),
  strings: () => ({ def: () => Tars.List(Tars.String), w: (os, t, v) => os.writeList(t, v), r: (is, t, q) => is.readList(t, q, Tars.List(Tars.String)) }),
  strIntMap: () => ({ def: () => Tars.Map(Tars.String, Tars.Int32), w: (os, t, v) => os.writeMap(t, v), r: (is, t, q) => is.readMap(t, q, Tars.Map(Tars.String, Tars.Int32)) }),
  struct: (C) => ({ def: () => new C(), w: (os, t, v) => os.writeStruct(t, v), r: (is, t, q) => is.readStruct(t, q, C) }),
};

function defStruct(name, fields) {
  const C = function () {
    for (const [, n, , ty] of fields) this[n] = ty.def();
    this._classname = name;
  };
  C._classname = name;
  C._write = (os, tag, v) => os.writeStruct(tag, v);
  C._read = (is, tag, def) => is.readStruct(tag, true, def);
  C._readFrom = (is) => {
    const v = new C();
    for (const [tag, n, req, ty] of fields) v[n] = ty.r(is, tag, req);
    return v;
  };
  C.new = () => new C();
  C.create = (is) => C._readFrom(is);
  C.prototype._writeTo = function (os) {
    for (const [tag, n, , ty] of fields) ty.w(os, tag, this[n]);
  };
  return C;
}

const H = {};
H.PushMessage = defStruct('herald.PushMessage', [
  [0, 'requestId', false, T.string()], [1, 'payload', false, T.bytes()],
  [2, 'ttl', false, T.int32(86400)], [3, 'collapseKey', false, T.string()],
  [4, 'needAck', false, T.bool(true)],
]);
H.PushSingleDeviceReq = defStruct('herald.PushSingleDeviceReq', [
  [0, 'apiKey', true, T.string()], [1, 'deviceId', true, T.string()], [2, 'msg', true, T.struct(H.PushMessage)],
]);
H.PushSingleDeviceRsp = defStruct('herald.PushSingleDeviceRsp', [
  [0, 'ret', true, T.int32()], [1, 'msgId', false, T.string()], [2, 'state', false, T.int32()],
]);
H.PushMultiDeviceReq = defStruct('herald.PushMultiDeviceReq', [
  [0, 'apiKey', true, T.string()], [1, 'deviceIds', true, T.strings()], [2, 'msg', true, T.struct(H.PushMessage)],
]);
H.PushMultiDeviceRsp = defStruct('herald.PushMultiDeviceRsp', [
  [0, 'ret', true, T.int32()], [1, 'msgId', false, T.string()], [2, 'online', false, T.int32()],
  [3, 'stored', false, T.int32()], [4, 'rejected', false, T.strIntMap()],
]);
H.PushAllOnlineDeviceReq = defStruct('herald.PushAllOnlineDeviceReq', [
  [0, 'apiKey', true, T.string()], [1, 'msg', true, T.struct(H.PushMessage)],
]);
H.PushAllOnlineDeviceRsp = defStruct('herald.PushAllOnlineDeviceRsp', [
  [0, 'ret', true, T.int32()], [1, 'msgId', false, T.string()], [2, 'targeted', false, T.int64()],
]);
H.PushAllDeviceReq = defStruct('herald.PushAllDeviceReq', [
  [0, 'apiKey', true, T.string()], [1, 'msg', true, T.struct(H.PushMessage)],
]);
H.PushAllDeviceRsp = defStruct('herald.PushAllDeviceRsp', [
  [0, 'ret', true, T.int32()], [1, 'msgId', false, T.string()], [2, 'online', false, T.int64()],
]);

function PushAPIProxy() { this._name = undefined; this._worker = undefined; }
PushAPIProxy.prototype.setTimeout = function (t) { this._worker.timeout = t; };
for (const [fn, Rsp] of [['pushSingleDevice', H.PushSingleDeviceRsp], ['pushMultiDevice', H.PushMultiDeviceRsp],
  ['pushAllOnlineDevice', H.PushAllOnlineDeviceRsp], ['pushAllDevice', H.PushAllDeviceRsp]]) {
  PushAPIProxy.prototype[fn] = function (req) {
    const os = new Tars.TarsOutputStream();
    os.writeStruct(1, req);
    return this._worker.tars_invoke(fn, os.getBinBuffer()).then((data) => {
      const is = new Tars.TarsInputStream(data.response.sBuffer);
      return { ret: is.readInt32(0, true, 0), rsp: is.readStruct(2, true, Rsp) };
    });
  };
}

function proxy(srv) {
  const p = rpc.client.stringToProxy(PushAPIProxy,
    `herald.PushServer.PushAPIObj@tcp -h 127.0.0.1 -p ${srv.tarsPort} -t 60000`);
  p.setTimeout(5000);
  return p;
}

// ---- one call shape for both transports ----

const STATE = { 0: 'duplicate', 1: 'stored', 3: 'written', 6: 'dropped' };

function tarsMsg(f) {
  const m = new H.PushMessage();
  if (f.requestId) m.requestId = f.requestId;
  if (f.payload !== undefined) m.payload = new Tars.BinBuffer(Buffer.from(f.payload));
  if (f.ttl !== undefined) m.ttl = f.ttl;
  if (f.needAck !== undefined) m.needAck = f.needAck;
  return m;
}

// op: single|multi|online|all; f: the HTTP JSON body.  Returns the HTTP
// answer's fields (TARS answers mapped onto the same names).
async function call(via, srv, op, f) {
  if (via === 'http') {
    const path = { single: '/v1/push/device', multi: '/v1/push/devices', online: '/v1/push/online', all: '/v1/push/all' }[op];
    const r = await h.push(srv, f, { path });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    return r.json;
  }
  const p = proxy(srv);
  let r;
  if (op === 'single') {
    const q = new H.PushSingleDeviceReq();
    q.apiKey = h.KEY; q.deviceId = f.deviceId; q.msg = tarsMsg(f);
    r = await p.pushSingleDevice(q);
  } else if (op === 'multi') {
    const q = new H.PushMultiDeviceReq();
    q.apiKey = h.KEY; q.msg = tarsMsg(f);
    for (const d of f.deviceIds) q.deviceIds.push(d);
    r = await p.pushMultiDevice(q);
  } else if (op === 'online') {
    const q = new H.PushAllOnlineDeviceReq();
    q.apiKey = h.KEY; q.msg = tarsMsg(f);
    r = await p.pushAllOnlineDevice(q);
  } else {
    const q = new H.PushAllDeviceReq();
    q.apiKey = h.KEY; q.msg = tarsMsg(f);
    r = await p.pushAllDevice(q);
  }
  assert.equal(r.ret, 0);
  assert.equal(r.rsp.ret, 0);
  const out = { msgId: r.rsp.msgId };
  if (op === 'single') out.state = STATE[r.rsp.state];
  if (op === 'multi') {
    out.online = r.rsp.online;
    out.stored = r.rsp.stored;
    out.rejected = {};
    r.rsp.rejected.forEach((k, v) => { out.rejected[k] = v; });
  }
  if (op === 'online') out.targeted = Number(r.rsp.targeted);
  if (op === 'all') out.online = Number(r.rsp.online);
  return out;
}

// ---- devices ----

async function until(cond, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what} not met in time`);
    await h.sleep(25);
  }
}

async function deviceInfo(srv, id) {
  const r = await fetch(`${srv.api}/v1/devices/${encodeURIComponent(id)}`,
    { headers: { authorization: `Bearer ${h.KEY}` } });
  assert.equal(r.status, 200);
  return r.json();
}

async function waitOffline(srv, id) {
  await until(async () => !(await deviceInfo(srv, id)).online, 5000, `${id} offline`);
}

// The npm ws client in JSON mode; acks each push unless ack is false.
async function wsDevice(t, srv, id, { ack = true } = {}) {
  const ws = new WebSocket(`ws://127.0.0.1:${srv.devPort}/v1/ws?token=${h.token(id)}`);
  const dev = { id, ws, pushes: [], waiters: [] };
  ws.on('message', (data, bin) => {
    if (bin) return;
    const m = JSON.parse(data);
    if (m.cmd !== 'push') return;
    // JSON mode leaves out fields at their IDL default (timeline 0).
    m.timeline = m.timeline || 0;
    dev.pushes.push(m);
    if (ack && m.needAck) {
      const a = m.timeline === 0 ? { inboxSeq: m.seq } : m.timeline === 1 ? { broadcastSeq: m.seq } : { msgIds: [m.msgId] };
      ws.send(JSON.stringify({ cmd: 'ack', ...a }));
    }
    for (const w of dev.waiters.splice(0)) w();
  });
  ws.on('error', () => {});
  dev.got = (msgId) => dev.pushes.filter((m) => m.msgId === msgId).length;
  dev.waitMsg = (msgId, ms = 5000) => until(() => dev.got(msgId) > 0, ms, `${id} gets ${msgId}`);
  dev.close = () => new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    ws.once('close', resolve);
    ws.terminate();
  });
  t.after(dev.close);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return dev;
}

// A `herald listen --json` process as a device.
async function listenDevice(t, srv, id) {
  const p = spawn(h.HERALD, ['listen', '--server', `127.0.0.1:${srv.devPort}`, '--app', 'test',
    '--secret', h.SECRET, '--device', id, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  h.live.add(p);
  const dev = { id, proc: p, out: '', err: '' };
  p.stdout.on('data', (d) => { dev.out += d; });
  p.stderr.on('data', (d) => { dev.err += d; });
  const exited = new Promise((resolve) => p.on('exit', () => { h.live.delete(p); resolve(); }));
  dev.pushes = () => dev.out.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  dev.got = (msgId) => dev.pushes().filter((m) => m.msgId === msgId).length;
  dev.waitMsg = (msgId, ms = 5000) => until(() => dev.got(msgId) > 0, ms, `${id} gets ${msgId}`);
  dev.close = async () => { if (p.exitCode === null && !p.signalCode) { p.kill('SIGTERM'); await exited; } };
  t.after(dev.close);
  await until(() => dev.err.includes('connected'), 5000, `${id} connects`);
  return dev;
}

// Connects once (so the app knows the device), then leaves.
async function registerThenLeave(t, srv, id) {
  const d = await wsDevice(t, srv, id);
  await d.close();
  await waitOffline(srv, id);
}

let uniq = 0;
const nextId = (p) => `${p}-${process.pid}-${++uniq}`;

// A later single push to the device; once it has arrived, the device's
// reconnect sync is complete, so anything absent by then is really absent.
async function marker(srv, dev) {
  const r = await call('http', srv, 'single', { deviceId: dev.id, payload: 'marker' });
  await dev.waitMsg(r.msgId);
}

for (const via of ['http', 'tars']) {
  test(`pushSingleDevice via ${via}: online, offline-then-connect, disconnect before ack`, async (t) => {
    const srv = await h.startServe(t);

    const online = await wsDevice(t, srv, nextId('s-on'));
    let r = await call(via, srv, 'single', { deviceId: online.id, payload: `to online ${via}` });
    assert.match(r.msgId, /^[0-9a-f]{24}$/);
    assert.equal(r.state, 'written');
    await online.waitMsg(r.msgId);
    assert.equal(online.pushes[0].payload, `to online ${via}`);
    assert.equal(online.pushes[0].timeline, 0);

    const offId = nextId('s-off');
    r = await call(via, srv, 'single', { deviceId: offId, payload: 'waits in the inbox' });
    assert.equal(r.state, 'stored');
    assert.equal((await deviceInfo(srv, offId)).inboxDepth, 1);
    const later = await listenDevice(t, srv, offId);
    await later.waitMsg(r.msgId);
    assert.equal(later.pushes()[0].payload, 'waits in the inbox');

    // Received but never acked: comes again on the next connection.
    const nack = await wsDevice(t, srv, nextId('s-nack'), { ack: false });
    r = await call(via, srv, 'single', { deviceId: nack.id, payload: 'ack me' });
    assert.equal(r.state, 'written');
    await nack.waitMsg(r.msgId);
    await nack.close();
    await waitOffline(srv, nack.id);
    const again = await wsDevice(t, srv, nack.id);
    await again.waitMsg(r.msgId);
    assert.equal(again.pushes.find((m) => m.msgId === r.msgId).payload, 'ack me');
    // Acked now: a third connection does not get it again.
    await until(async () => (await deviceInfo(srv, nack.id)).lastAckedSeq >= again.pushes[0].seq);
    await again.close();
    await waitOffline(srv, nack.id);
    const third = await wsDevice(t, srv, nack.id);
    await marker(srv, third);
    assert.equal(third.got(r.msgId), 0, 'an acked message was delivered again');
  });

  test(`pushMultiDevice via ${via}: online, offline, rejected ids`, async (t) => {
    const srv = await h.startServe(t);
    const a = await wsDevice(t, srv, nextId('m-ws'));
    const b = await listenDevice(t, srv, nextId('m-listen'));
    const offId = nextId('m-off');
    const r = await call(via, srv, 'multi', { deviceIds: [a.id, b.id, offId, 'bad id!'], payload: 'to many' });
    assert.match(r.msgId, /^[0-9a-f]{24}$/);
    assert.equal(r.online, 2);
    assert.equal(r.stored, 3);
    assert.deepEqual(r.rejected, { 'bad id!': 1 });
    await a.waitMsg(r.msgId);
    await b.waitMsg(r.msgId);
    assert.equal((await deviceInfo(srv, offId)).inboxDepth, 1);
    const c = await wsDevice(t, srv, offId);
    await c.waitMsg(r.msgId);
    assert.equal(c.pushes[0].payload, 'to many');
    await marker(srv, a);
    await marker(srv, b);
    // Live pushes may race the connect-time sync (at-least-once; clients
    // drop copies by msgId): received, and nothing else.
    assert.ok(a.got(r.msgId) >= 1);
    assert.ok(b.got(r.msgId) >= 1);
  });

  test(`pushAllOnlineDevice via ${via}: online devices only, never stored`, async (t) => {
    const srv = await h.startServe(t);
    const laterId = nextId('o-later');
    await registerThenLeave(t, srv, laterId);
    const a = await wsDevice(t, srv, nextId('o-ws'));
    const b = await listenDevice(t, srv, nextId('o-listen'));
    const r = await call(via, srv, 'online', { payload: 'now or never' });
    assert.match(r.msgId, /^[0-9a-f]{24}$/);
    assert.equal(r.targeted, 2);
    await a.waitMsg(r.msgId);
    await b.waitMsg(r.msgId);
    assert.equal(a.pushes.find((m) => m.msgId === r.msgId).timeline, 2);
    const late = await wsDevice(t, srv, laterId);
    await marker(srv, late);
    assert.equal(late.got(r.msgId), 0, 'an online-only push reached a device that connected later');
    // A device never seen before gets nothing either.
    const fresh = await wsDevice(t, srv, nextId('o-fresh'));
    await marker(srv, fresh);
    assert.equal(fresh.got(r.msgId), 0);
  });

  test(`pushAllDevice via ${via}: online now, registered devices on reconnect`, async (t) => {
    const srv = await h.startServe(t);
    const laterId = nextId('a-later');
    await registerThenLeave(t, srv, laterId);
    const laterListenId = nextId('a-later-listen');
    await registerThenLeave(t, srv, laterListenId);
    const a = await wsDevice(t, srv, nextId('a-ws'));
    const r = await call(via, srv, 'all', { payload: 'for everyone' });
    assert.match(r.msgId, /^[0-9a-f]{24}$/);
    assert.equal(r.online, 1);
    await a.waitMsg(r.msgId);
    assert.equal(a.pushes[0].timeline, 1);
    const late = await wsDevice(t, srv, laterId);
    await late.waitMsg(r.msgId);
    assert.equal(late.pushes.find((m) => m.msgId === r.msgId).payload, 'for everyone');
    const lateListen = await listenDevice(t, srv, laterListenId);
    await lateListen.waitMsg(r.msgId);
    // Acked broadcast: not again on the next connection.
    await until(async () => (await deviceInfo(srv, laterId)).broadcastCursor >= late.pushes[0].seq);
    await late.close();
    await waitOffline(srv, laterId);
    const late2 = await wsDevice(t, srv, laterId);
    await marker(srv, late2);
    assert.equal(late2.got(r.msgId), 0, 'an acked broadcast came again');
  });

  test(`idempotency via ${via}: same requestId, same msgId, one delivery`, async (t) => {
    const srv = await h.startServe(t);
    const dev = await wsDevice(t, srv, nextId('i-dev'));
    const rid = nextId('req');
    const first = await call(via, srv, 'single', { deviceId: dev.id, requestId: rid, payload: 'once' });
    assert.equal(first.state, 'written');
    const second = await call(via, srv, 'single', { deviceId: dev.id, requestId: rid, payload: 'once' });
    assert.equal(second.msgId, first.msgId);
    assert.equal(second.state, 'duplicate');
    // The same requestId on another operation is still the same request.
    const third = await call(via, srv, 'all', { requestId: rid, payload: 'once' });
    assert.equal(third.msgId, first.msgId);
    await marker(srv, dev);
    // Idempotency is about messages, not transport copies: delivery is
    // at-least-once (a push racing the connect-time sync may arrive twice,
    // and clients drop copies by msgId), so count distinct msgIds.
    assert.ok(dev.got(first.msgId) >= 1);
    const ids = new Set(dev.pushes.map((p) => p.msgId));
    assert.equal(ids.size, 2, 'only the first push and the marker');
  });
}

test('idempotency survives a restart on the same db (HTTP and TARS)', async (t) => {
  let srv = await h.startServe(t);
  const offId = nextId('ir-off');
  const ridHttp = nextId('req-http');
  const ridTars = nextId('req-tars');
  const a = await call('http', srv, 'single', { deviceId: offId, requestId: ridHttp, payload: 'h' });
  const b = await call('tars', srv, 'single', { deviceId: offId, requestId: ridTars, payload: 't' });
  assert.equal(a.state, 'stored');
  assert.equal(b.state, 'stored');
  const db = srv.db;
  srv.proc.kill('SIGKILL');
  await srv.stop();
  srv = await h.startServe(t, ['--db', db]);
  for (const via of ['http', 'tars']) {
    const a2 = await call(via, srv, 'single', { deviceId: offId, requestId: ridHttp, payload: 'h' });
    assert.equal(a2.msgId, a.msgId);
    assert.equal(a2.state, 'duplicate');
    const b2 = await call(via, srv, 'single', { deviceId: offId, requestId: ridTars, payload: 't' });
    assert.equal(b2.msgId, b.msgId);
  }
  assert.equal((await deviceInfo(srv, offId)).inboxDepth, 2);
  const dev = await wsDevice(t, srv, offId);
  await marker(srv, dev);
  assert.equal(dev.got(a.msgId), 1);
  assert.equal(dev.got(b.msgId), 1);
  assert.equal(new Set(dev.pushes.map((p) => p.msgId)).size, 3);
});
