'use strict';
// The TARS PushAPI of a real `herald serve` on its event loop:
//  * many calls written back to back on one connection before reading
//    (pushes that wait for the store, immediate errors, pings, a one-way
//    push) are all answered, each under its own iRequestId, and counted
//    in /metrics;
//  * v3 (TUP) calls in flight together through the real @tars/rpc client;
//  * 50000 pings written while the client reads nothing are all answered
//    once it reads (output back-pressure and resume);
//  * --tars-max-conns caps open connections; a bad frame closes only its
//    own connection;
//  * SIGTERM drains: every call answered before the close is durable, and
//    no call left unanswered was run.
// Requests are raw RequestPackets from @tars/rpc's own RequestF classes;
// argument structs come from jce2c's schema via tests/interop/lib.
const test = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const path = require('node:path');
const Tars = require('@tars/stream');
const rpc = require('@tars/rpc');
const TarsPacket = require('@tars/rpc/core/rpc-tars/RequestF.js').tars;
const h = require('./helpers');
const { loadSchemas, TarsTypes } = require('../interop/lib/jce_model');

test.after(() => rpc.client.destroy());

const OBJ = 'herald.PushServer.PushAPIObj';
const types = new TarsTypes(loadSchemas([path.join(h.BUILD, 'gen')]));
const cls = (name) => types.structClass(`herald.${name}`);

// ---- frames ----------------------------------------------------------------

function requestFrame(id, func, args, packetType = 0) {
  const req = new TarsPacket.RequestPacket();
  req.iVersion = 1;
  req.cPacketType = packetType;
  req.iRequestId = id;
  req.sServantName = OBJ;
  req.sFuncName = func;
  req.sBuffer = args || new Tars.BinBuffer();
  const os = new Tars.TarsOutputStream();
  os.setHeaderLength(0);
  req._writeTo(os);
  os.setHeaderLength(os.getBinBuffer().length);
  return os.getBinBuffer().toNodeBuffer();
}

function singleReq(deviceId, requestId, apiKey = h.KEY) {
  return types.toTars({ struct: 'herald.PushSingleDeviceReq' },
    h.full('PushSingleDeviceReq', {
      apiKey, deviceId,
      msg: h.full('PushMessage', { requestId, payload: Buffer.from('pl') }),
    }));
}

function singleArgs(deviceId, requestId, apiKey) {
  const os = new Tars.TarsOutputStream();
  os.writeStruct(1, singleReq(deviceId, requestId, apiKey));
  return os.getBinBuffer();
}

// v1 answer -> { id, iRet, ret, rsp } (ret and rsp when `single` and the
// answer has results, i.e. not for tars_ping).
function decodeAnswer(buf, single) {
  const is = new Tars.TarsInputStream(new Tars.BinBuffer(buf));
  const a = TarsPacket.ResponsePacket._readFrom(is);
  const out = { id: a.iRequestId, iRet: a.iRet };
  if (single && a.iRet === 0 && a.sBuffer.length > 0) {
    const b = new Tars.TarsInputStream(a.sBuffer);
    out.ret = b.readInt32(0, true, 0);
    out.rsp = types.fromTars({ struct: 'herald.PushSingleDeviceRsp' },
      b.readStruct(2, true, cls('PushSingleDeviceRsp')));
  }
  return out;
}

// A raw TARS connection collecting whole answer frames.
class Raw {
  constructor(port) {
    this.sock = net.connect(port, '127.0.0.1');
    this.buf = Buffer.alloc(0);
    this.frames = [];
    this.waiters = [];
    this.closed = new Promise((r) => this.sock.once('close', () => { this.isClosed = true; r(); this._wake(); }));
    this.sock.on('error', () => {});
    this.sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 4 && this.buf.length >= this.buf.readUInt32BE(0)) {
        const n = this.buf.readUInt32BE(0);
        this.frames.push(this.buf.subarray(4, n));
        this.buf = this.buf.subarray(n);
      }
      this._wake();
    });
    this.connected = new Promise((r) => this.sock.once('connect', r));
  }
  _wake() { for (const w of this.waiters.splice(0)) w(); }
  wait(n, ms = 10000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.frames.length}/${n} answers in ${ms} ms`)), ms);
      const check = () => {
        if (this.frames.length >= n) { clearTimeout(timer); resolve(this.frames.splice(0, n)); return; }
        if (this.isClosed) { clearTimeout(timer); reject(new Error(`closed after ${this.frames.length}/${n} answers`)); return; }
        this.waiters.push(check);
      };
      check();
    });
  }
  async waitClosed(ms = 3000) {
    let timer;
    const late = new Promise((_, rej) => { timer = setTimeout(() => rej(new Error('not closed')), ms); });
    await Promise.race([this.closed, late]);
    clearTimeout(timer);
  }
}


async function metric(admin, name, labels) {
  const text = await (await fetch(`${admin}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m && m[1] === name && want.every((l) => (m[2] || '').split(',').includes(l)))
      return Number(m[3]);
  }
  return 0;
}

// ---- tests -----------------------------------------------------------------

test('pipelined v1 calls: all answered by iRequestId, one-way runs, metrics count them', async (t) => {
  const adminPort = await h.freePort();
  const srv = await h.startServe(t, ['--admin-port', String(adminPort)]);
  const admin = `http://127.0.0.1:${adminPort}`;
  const c = new Raw(srv.tarsPort);
  t.after(() => c.sock.destroy());
  await c.connected;

  // 40 calls: pings, bad keys (answered at once), pushes to offline devices
  // (answered after the durable commit), and a one-way push first.
  const expect = new Map();
  const parts = [requestFrame(999, 'pushSingleDevice', singleArgs('pl-ow', 'rq-ow'), 1)];
  for (let i = 0; i < 40; i++) {
    const id = 1000 + i;
    if (i % 4 === 0) {
      parts.push(requestFrame(id, 'tars_ping'));
      expect.set(id, 'ping');
    } else if (i % 4 === 1) {
      parts.push(requestFrame(id, 'pushSingleDevice', singleArgs(`pl-${i}`, `rq-${i}`, 'WRONG')));
      expect.set(id, 2);
    } else {
      parts.push(requestFrame(id, 'pushSingleDevice', singleArgs(`pl-${i}`, `rq-${i}`)));
      expect.set(id, 0);
    }
  }
  c.sock.write(Buffer.concat(parts)); // one write: all in flight together
  const answers = (await c.wait(40)).map((f) => decodeAnswer(f, true));
  assert.deepEqual(answers.map((a) => a.id).sort(), [...expect.keys()].sort(),
    'every call answered once, the one-way call never');
  const msgIds = new Set();
  for (const a of answers) {
    assert.equal(a.iRet, 0, `framework code of ${a.id}`);
    const want = expect.get(a.id);
    if (want === 'ping') continue;
    assert.equal(a.ret, want, `ret of ${a.id}`);
    if (want === 0) {
      assert.equal(a.rsp.state, 1, 'stored for the offline device');
      assert.match(a.rsp.msgId, /^[0-9a-f]{24}$/);
      msgIds.add(a.rsp.msgId);
    }
  }
  assert.equal(msgIds.size, 20, 'one message per push');
  // Several calls were in flight at once: a ping sent after a push that
  // waits for the store is answered before it (a server running one call
  // at a time per connection answers strictly in request order).
  const pos = new Map(answers.map((a, i) => [a.id, i]));
  const overtaken = [...expect].some(([p, kp]) => kp === 'ping' &&
    [...expect].some(([q, kq]) => kq === 0 && q < p && pos.get(p) < pos.get(q)));
  assert.ok(overtaken, `answers in completion order: ${answers.map((a) => a.id).join(' ')}`);

  // The one-way push ran: its requestId is taken.
  c.sock.write(requestFrame(2000, 'pushSingleDevice', singleArgs('pl-ow', 'rq-ow')));
  const [dup] = (await c.wait(1)).map((f) => decodeAnswer(f, true));
  assert.equal(dup.id, 2000);
  assert.equal(dup.ret, 0);
  assert.equal(dup.rsp.state, 0, 'a duplicate of the one-way push');

  const fn = (func, result) => metric(admin, 'herald_tars_calls_total', { func, result });
  assert.equal(await fn('pushSingleDevice', 'ok'), 22); // 20 + one-way + duplicate
  assert.equal(await fn('pushSingleDevice', 'error'), 10);
  assert.equal(await fn('tars_ping', 'ok'), 10);
  assert.equal(await metric(admin, 'herald_tars_call_duration_seconds_count',
    { func: 'pushSingleDevice' }), 32);
});

// The proxy tars2node --client would write, v3 only.
function V3Proxy() { this._name = undefined; this._worker = undefined; }
V3Proxy.prototype.setTimeout = function (ms) { this._worker.timeout = ms; };
V3Proxy.prototype.setVersion = function (v) { this._worker.version = v; };
V3Proxy.prototype.pushSingleDevice = function (req) {
  const tup = new Tars.UniAttribute();
  tup.tupVersion = Tars.UniAttribute.TUP_SIMPLE;
  tup.writeStruct('req', req);
  return this._worker.tup_invoke('pushSingleDevice', tup).then((d) => ({
    ret: d.response.tup.readInt32(''),
    rsp: d.response.tup.readStruct('rsp', cls('PushSingleDeviceRsp')),
  }));
};

test('v3 calls in flight together through @tars/rpc', async (t) => {
  const srv = await h.startServe(t);
  const p = rpc.client.stringToProxy(V3Proxy, `${OBJ}@tcp -h 127.0.0.1 -p ${srv.tarsPort} -t 60000`);
  p.setTimeout(5000);
  p.setVersion(Tars.UniAttribute.TUP_SIMPLE);
  const calls = [];
  for (let i = 0; i < 24; i++)
    calls.push(p.pushSingleDevice(singleReq(`v3-${i}`, `v3r-${i}`, i % 3 === 0 ? 'WRONG' : h.KEY)));
  const res = await Promise.all(calls);
  res.forEach((r, i) => {
    assert.equal(r.ret, i % 3 === 0 ? 2 : 0, `call ${i}`);
    assert.equal(r.rsp.ret, r.ret);
    if (r.ret === 0) assert.equal(r.rsp.state, 1);
  });
  assert.equal(new Set(res.filter((r) => r.ret === 0).map((r) => r.rsp.msgId)).size, 16);
});

test('50000 pings written unread: all answered once the client reads', async (t) => {
  const srv = await h.startServe(t);
  const c = new Raw(srv.tarsPort);
  t.after(() => c.sock.destroy());
  await c.connected;
  c.sock.pause(); // read nothing: the server's answers pile up
  const N = 50000;
  const parts = [];
  for (let i = 1; i <= N; i++) parts.push(requestFrame(i, 'tars_ping'));
  c.sock.write(Buffer.concat(parts));
  await h.sleep(500);
  c.sock.resume();
  const got = await c.wait(N, 20000);
  const seen = new Uint8Array(N + 1);
  for (const f of got) {
    const a = decodeAnswer(f, false);
    assert.equal(a.iRet, 0);
    assert.ok(a.id >= 1 && a.id <= N && !seen[a.id], `answer ${a.id} once`);
    seen[a.id] = 1;
  }
});

test('--tars-max-conns caps open connections; a bad frame closes only its own', async (t) => {
  // All from one address: its share (half the cap by default) is the cap.
  const srv = await h.startServe(t, ['--tars-max-conns', '2', '--tars-max-conns-per-ip', '2']);
  const ping = async (c, id) => {
    c.sock.write(requestFrame(id, 'tars_ping'));
    const [a] = await c.wait(1, 3000);
    assert.equal(decodeAnswer(a, false).id, id);
  };
  const a = new Raw(srv.tarsPort);
  const b = new Raw(srv.tarsPort);
  t.after(() => { a.sock.destroy(); b.sock.destroy(); });
  await ping(a, 1);
  await ping(b, 2);
  const over = new Raw(srv.tarsPort);
  over.sock.write(requestFrame(3, 'tars_ping'));
  await over.waitClosed();
  assert.equal(over.frames.length, 0, 'the third connection got no answer');

  // A length over the limit closes that connection; the other one lives.
  const head = Buffer.alloc(4);
  head.writeUInt32BE(0xffffffff);
  a.sock.write(head);
  await a.waitClosed();
  await ping(b, 4);

  // Its slot is free again (the close is seen at once, but allow a retry).
  let ok = false;
  for (let i = 0; i < 20 && !ok; i++) {
    const d = new Raw(srv.tarsPort);
    d.sock.write(requestFrame(5, 'tars_ping'));
    try { await d.wait(1, 500); ok = true; } catch (_) { await h.sleep(50); }
    d.sock.destroy();
  }
  assert.ok(ok, 'a new connection is taken once one closed');

  // An undecodable packet of a valid length closes its connection too.
  const junk = Buffer.concat([Buffer.from([0, 0, 0, 12]), Buffer.from('\xff\xff\xff\xff\xff\xff\xff\xff', 'latin1')]);
  b.sock.write(junk);
  await b.waitClosed();
});

test('SIGTERM drains: answered calls are durable, unanswered ones never ran', async (t) => {
  const srv = await h.startServe(t);
  const c = new Raw(srv.tarsPort);
  await c.connected;
  const N = 30;
  const parts = [];
  for (let i = 0; i < N; i++) parts.push(requestFrame(100 + i, 'pushSingleDevice', singleArgs(`dr-${i}`, `dr-${i}`)));
  c.sock.write(Buffer.concat(parts));
  await new Promise((r) => setTimeout(r, 1)); // let some of them start
  const exited = new Promise((r) => srv.proc.once('exit', (code, sig) => r({ code, sig })));
  srv.proc.kill('SIGTERM');
  // Calls sent once the drain began are never run (if the connection is
  // still open to take the bytes at all).
  await h.sleep(100);
  const late = [];
  for (let i = N; i < N + 5; i++) late.push(requestFrame(100 + i, 'pushSingleDevice', singleArgs(`dr-${i}`, `dr-${i}`)));
  if (!c.isClosed) c.sock.write(Buffer.concat(late));
  await c.waitClosed(15000);
  assert.deepEqual(await exited, { code: 0, sig: null });
  assert.equal(c.buf.length, 0, 'no partial answer');
  const before = new Map();
  for (const f of c.frames) {
    const a = decodeAnswer(f, true);
    assert.equal(a.iRet, 0);
    assert.equal(a.ret, 0);
    before.set(a.id, a.rsp.msgId);
  }
  t.diagnostic(`${before.size}/${N} answered before the close`);

  // Same store again: an answered push is a duplicate with its msgId; an
  // unanswered one is new.
  const again = await h.startServe(t, ['--db', srv.db]);
  const d = new Raw(again.tarsPort);
  t.after(() => d.sock.destroy());
  d.sock.write(Buffer.concat([...parts, ...late]));
  for (const a of (await d.wait(N + late.length)).map((f) => decodeAnswer(f, true))) {
    assert.equal(a.ret, 0);
    if (before.has(a.id)) {
      assert.equal(a.rsp.state, 0, `call ${a.id} was answered, so it is stored`);
      assert.equal(a.rsp.msgId, before.get(a.id));
    } else {
      assert.equal(a.rsp.state, 1, `call ${a.id} was not answered, so it never ran`);
    }
  }
});
