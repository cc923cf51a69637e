'use strict';
// Bad input at the device port, one case per test, each answered with the
// code or close reason docs/protocol.md documents (§2.2 framing errors,
// §2.4 ErrCode, §3.1/§3.2 WebSocket).  In every case a well-behaved raw TCP
// device, connected and authenticated before the bad client arrives, must
// still receive a push sent through the HTTP API afterwards: one client's
// garbage must never cost another client its service.
//
// Packages are encoded and decoded with @tars/stream through the helpers'
// schema model; the bad clients are plain node `net` sockets so every byte
// on the wire is chosen here.
const test = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const net = require('node:net');
const h = require('./helpers');

const ERR = {
  BAD_PREFACE: 1001, BAD_VERSION: 1002, FRAME_TOO_LARGE: 1003, BAD_PACKAGE: 1004,
  UNKNOWN_CMD: 1005, NOT_AUTHED: 1006, BAD_TOKEN: 1007, TOKEN_EXPIRED: 1008,
};
const HEAD_TIMEOUT = 2; // seconds, for the slow-head case

let devSeq = 0;

// A server plus one authenticated, well-behaved device on it.
async function setup(t, extra = []) {
  const srv = await h.startServe(t, extra);
  const name = `good-${process.pid}-${++devSeq}`;
  const good = new h.TcpDevice(srv.devPort);
  t.after(() => good.destroy());
  await good.connected;
  const r = await good.hello(h.token(name));
  assert.equal(r.ret, 0, 'the good device authenticates');
  return { srv, good, name };
}

// The good device still gets a push through the HTTP API, and is open.
async function stillServed(env, payload = `still served ${Date.now()}`) {
  const r = await h.push(env.srv, { deviceId: env.name, payload });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.state, 'written', 'the good device is still online');
  const p = await env.good.waitFor((x) => x.cmd === h.CMD.PUSH);
  const batch = h.dec('PushBatch', p.body);
  assert.equal(batch.msgs[0].payload.toString(), payload);
  assert.equal(batch.msgs[0].msgId, r.json.msgId);
  assert.equal(env.good.closedAt, null, 'the good device was closed');
}

// A raw client socket recording every byte and when the server closed it.
function rawClient(port) {
  const s = net.connect(port, '127.0.0.1');
  const st = { sock: s, data: Buffer.alloc(0), closedAt: null, waiters: [] };
  st.connected = new Promise((resolve) => s.once('connect', resolve));
  st.closed = new Promise((resolve) => s.on('close', () => {
    st.closedAt = Date.now();
    resolve();
    for (const w of st.waiters.splice(0)) w();
  }));
  s.on('data', (d) => {
    st.data = Buffer.concat([st.data, d]);
    for (const w of st.waiters.splice(0)) w();
  });
  s.on('error', () => {});
  // Resolves once pred(data) holds; rejects on close or timeout.
  st.until = (pred, what, ms = 5000) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${what}`)), ms);
    const check = () => {
      const v = pred(st.data);
      if (v) { clearTimeout(timer); resolve(v); return; }
      if (st.closedAt) { clearTimeout(timer); reject(new Error(`closed before ${what}`)); return; }
      st.waiters.push(check);
    };
    check();
  });
  st.waitClosed = (ms = 5000) => {
    let timer;
    return Promise.race([st.closed, new Promise((_, rej) => {
      timer = setTimeout(() => rej(new Error('server did not close the connection')), ms);
    })]).finally(() => clearTimeout(timer));
  };
  return st;
}

// ---- raw TCP -----------------------------------------------------------------

// The Kick a TcpDevice received, decoded.
async function kickOf(dev) {
  const p = await dev.waitFor((x) => x.cmd === h.CMD.KICK);
  assert.equal(p.reqId, 0, 'server-initiated packages carry reqId 0');
  return h.dec('Kick', p.body);
}

function u32(n) {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

test('bad preface: not "YYB" is closed at once, with nothing written', async (t) => {
  const env = await setup(t);
  // A wrong magic letter after 'Y', and a TLS ClientHello's first bytes.
  for (const pre of [Buffer.from('YYX\x00\x00\x00\x01', 'latin1'),
    Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])]) {
    const bad = rawClient(env.srv.devPort);
    t.after(() => bad.sock.destroy());
    await bad.connected;
    const t0 = Date.now();
    bad.sock.write(pre);
    await bad.waitClosed(2000);
    assert.ok(bad.closedAt - t0 < 1000, `closed after ${bad.closedAt - t0} ms, not at once`);
    assert.equal(bad.data.length, 0, `no reply to ${pre.toString('hex')}: ${bad.data.toString('hex')}`);
  }
  await stillServed(env);
});

test('bad preface: "XYZ…" is closed promptly and never gets a frame', async (t) => {
  // An upper-case first byte may be an HTTP method on this shared port, so
  // the gateway may answer an HTTP error before it closes; what it must not
  // do is keep the connection or speak the raw protocol to it.
  const env = await setup(t);
  const bad = rawClient(env.srv.devPort);
  t.after(() => bad.sock.destroy());
  await bad.connected;
  const t0 = Date.now();
  bad.sock.write(Buffer.concat([Buffer.from('XYZ', 'latin1'), u32(1),
    h.frame({ cmd: h.CMD.HEARTBEAT })]));
  await bad.waitClosed(2000);
  assert.ok(bad.closedAt - t0 < 1000, `closed after ${bad.closedAt - t0} ms`);
  const text = bad.data.toString('latin1');
  assert.ok(bad.data.length === 0 || /^HTTP\/1\.1 4\d\d /.test(text),
    `unexpected reply: ${JSON.stringify(text.slice(0, 80))}`);
  await stillServed(env);
});

test('unknown version: Kick ERR_BAD_VERSION (1002), then close', async (t) => {
  const env = await setup(t);
  const bad = new h.TcpDevice(env.srv.devPort);
  t.after(() => bad.destroy());
  await bad.connected;
  bad.write(h.preface(99));
  const k = await kickOf(bad);
  assert.equal(k.reason, ERR.BAD_VERSION);
  await bad.waitClosed();
  await stillServed(env);
});

test('oversize length (10 MiB): Kick ERR_FRAME_TOO_LARGE (1003), then close', async (t) => {
  const env = await setup(t);
  const bad = new h.TcpDevice(env.srv.devPort);
  t.after(() => bad.destroy());
  await bad.connected;
  // Only the length is sent: the frame must be refused from it alone.
  bad.write(Buffer.concat([h.preface(), u32(10 * 1024 * 1024)]));
  const k = await kickOf(bad);
  assert.equal(k.reason, ERR.FRAME_TOO_LARGE);
  await bad.waitClosed();
  await stillServed(env);
});

test('frame length under 5: Kick ERR_BAD_PACKAGE (1004), then close', async (t) => {
  const env = await setup(t);
  const bad = new h.TcpDevice(env.srv.devPort);
  t.after(() => bad.destroy());
  await bad.connected;
  bad.write(Buffer.concat([h.preface(), u32(4)]));
  const k = await kickOf(bad);
  assert.equal(k.reason, ERR.BAD_PACKAGE);
  await bad.waitClosed();
  await stillServed(env);
});

// Sends one frame carrying body (not a valid Package) after a good hello.
async function badFrameAfterHello(t, env, body, dev) {
  const bad = new h.TcpDevice(env.srv.devPort);
  t.after(() => bad.destroy());
  await bad.connected;
  assert.equal((await bad.hello(h.token(dev))).ret, 0);
  bad.write(Buffer.concat([u32(body.length + 4), body]));
  const p = await bad.waitFor((x) => x.ret !== 0);
  await bad.waitClosed();
  return p;
}

test('truncated JCE: ret ERR_BAD_PACKAGE (1004), then close', async (t) => {
  const env = await setup(t);
  const whole = h.enc('Package', { cmd: h.CMD.ACK, reqId: 5,
    body: h.enc('AckReq', { msgIds: ['m'.repeat(40), 'n'.repeat(40)] }) });
  // Cut inside the body's byte vector: its length says more than is left.
  // (@tars/stream itself does not notice such a cut, so no JS cross-check.)
  const cut = whole.subarray(0, whole.length - 30);
  const p = await badFrameAfterHello(t, env, cut, 'trunc-dev');
  assert.equal(p.ret, ERR.BAD_PACKAGE);
  await stillServed(env);
});

test('garbage JCE: ret ERR_BAD_PACKAGE (1004), then close', async (t) => {
  const env = await setup(t);
  const junk = crypto.randomBytes(64);
  junk[0] = 0x0f; // tag 0 with type 15: no such JCE type, whatever follows
  assert.throws(() => h.dec('Package', junk), 'the junk is invalid for @tars/stream too');
  const p = await badFrameAfterHello(t, env, junk, 'junk-dev');
  assert.equal(p.ret, ERR.BAD_PACKAGE);
  await stillServed(env);
});

test('unknown command 77: ret ERR_UNKNOWN_CMD (1005), connection stays usable', async (t) => {
  const env = await setup(t);
  const bad = new h.TcpDevice(env.srv.devPort);
  t.after(() => bad.destroy());
  await bad.connected;
  assert.equal((await bad.hello(h.token('cmd77-dev'))).ret, 0);
  bad.write(h.frame({ cmd: 77, reqId: 42 }));
  const p = await bad.waitFor((x) => x.reqId === 42);
  assert.equal(p.ret, ERR.UNKNOWN_CMD);
  // Still authenticated and served: a heartbeat is answered normally.
  bad.send(h.CMD.HEARTBEAT, 'HeartbeatReq', { interval: 30 }, 43);
  const hb = await bad.waitFor((x) => x.reqId === 43);
  assert.equal(hb.cmd, h.CMD.HEARTBEAT);
  assert.equal(hb.ret, 0);
  assert.ok(h.dec('HeartbeatRsp', hb.body).idleTimeout > 0);
  assert.equal(bad.closedAt, null);
  await stillServed(env);
});

test('command before auth: ret ERR_NOT_AUTHED (1006), then close', async (t) => {
  const env = await setup(t);
  const bad = new h.TcpDevice(env.srv.devPort);
  t.after(() => bad.destroy());
  await bad.connected;
  bad.write(h.preface());
  bad.send(h.CMD.HEARTBEAT, 'HeartbeatReq', { interval: 30 }, 3);
  const p = await bad.waitFor((x) => x.reqId === 3);
  assert.equal(p.cmd, h.CMD.HEARTBEAT);
  assert.equal(p.ret, ERR.NOT_AUTHED);
  await bad.waitClosed();
  await stillServed(env);
});

test('forged token: ret ERR_BAD_TOKEN (1007), then close', async (t) => {
  const env = await setup(t);
  for (const tok of [h.token('forged-dev', { secret: 'WRONG' }), 'not-a-token']) {
    const bad = new h.TcpDevice(env.srv.devPort);
    t.after(() => bad.destroy());
    await bad.connected;
    const r = await bad.hello(tok);
    assert.equal(r.ret, ERR.BAD_TOKEN, `token ${tok}`);
    await bad.waitClosed();
  }
  // The forged device is not online: a push to it is not written.
  const r = await h.push(env.srv, { deviceId: 'forged-dev', payload: 'x' });
  assert.notEqual(r.json.state, 'written');
  await stillServed(env);
});

test('expired token: ret ERR_TOKEN_EXPIRED (1008), then close', async (t) => {
  const env = await setup(t);
  const bad = new h.TcpDevice(env.srv.devPort);
  t.after(() => bad.destroy());
  await bad.connected;
  const tok = h.expiredToken('expired-dev');
  const r = await bad.hello(tok);
  assert.equal(r.ret, ERR.TOKEN_EXPIRED);
  await bad.waitClosed();
  // The same token at a WebSocket handshake: 401 naming the code.
  const res = await wsHandshake(env.srv.devPort, tok);
  assert.match(res.head, /^HTTP\/1\.1 401 /);
  assert.equal(JSON.parse(res.body).code, ERR.TOKEN_EXPIRED);
  await stillServed(env);
});

// ---- WebSocket -----------------------------------------------------------------

function upgradeRequest(port, tok, key) {
  return `GET /v1/ws?token=${tok} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
    `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
    'Sec-WebSocket-Version: 13\r\n\r\n';
}

// A refused handshake: the whole response, split into head and body.
async function wsHandshake(port, tok) {
  const c = rawClient(port);
  await c.connected;
  c.sock.write(upgradeRequest(port, tok, crypto.randomBytes(16).toString('base64')));
  await c.waitClosed();
  const text = c.data.toString('utf8');
  const i = text.indexOf('\r\n\r\n');
  return { head: text.slice(0, i + 2), body: text.slice(i + 4) };
}

// Opens a raw WebSocket: a valid upgrade, then returns the client with a
// frame reader over the bytes after the 101 head.
async function rawWs(port, dev) {
  const c = rawClient(port);
  await c.connected;
  const key = crypto.randomBytes(16).toString('base64');
  c.sock.write(upgradeRequest(port, h.token(dev), key));
  const headEnd = await c.until((d) => { const i = d.indexOf('\r\n\r\n'); return i >= 0 ? i + 4 : 0; },
    'the 101 response');
  const head = c.data.subarray(0, headEnd).toString('latin1');
  assert.match(head, /^HTTP\/1\.1 101 /);
  const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  assert.match(head, new RegExp(`Sec-WebSocket-Accept: ${accept.replace(/[+/]/g, '\\$&')}\r\n`, 'i'));
  c.frames = () => parseFrames(c.data.subarray(headEnd));
  return c;
}

// Server frames: never masked, never fragmented (protocol.md §3.2).
function parseFrames(b) {
  const out = [];
  let off = 0;
  while (off + 2 <= b.length) {
    const op = b[off] & 0x0f, masked = b[off + 1] & 0x80;
    let len = b[off + 1] & 0x7f, hl = 2;
    if (len === 126) { if (off + 4 > b.length) break; len = b.readUInt16BE(off + 2); hl = 4; }
    else if (len === 127) { if (off + 10 > b.length) break; len = Number(b.readBigUInt64BE(off + 2)); hl = 10; }
    if (off + hl + len > b.length) break;
    out.push({ op, fin: !!(b[off] & 0x80), masked: !!masked, payload: b.subarray(off + hl, off + hl + len) });
    off += hl + len;
  }
  return out;
}

async function closeFrame(c) {
  const f = await c.until(() => c.frames().find((x) => x.op === 0x8), 'a close frame');
  assert.equal(f.masked, false, 'server frames are not masked');
  assert.ok(f.payload.length >= 2, 'the close frame carries a code');
  return { code: f.payload.readUInt16BE(0), reason: f.payload.subarray(2).toString() };
}

test('websocket: an unmasked client frame gets close 1002', async (t) => {
  const env = await setup(t);
  const c = await rawWs(env.srv.devPort, 'unmasked-dev');
  t.after(() => c.sock.destroy());
  const text = Buffer.from(JSON.stringify({ cmd: 'heartbeat', reqId: 1, interval: 30 }));
  c.sock.write(Buffer.concat([Buffer.from([0x81, text.length]), text]));
  const cl = await closeFrame(c);
  assert.equal(cl.code, 1002, `close reason: ${cl.reason}`);
  // Nothing the frame asked for was done: no heartbeat answer.
  assert.ok(!c.frames().some((f) => f.op === 0x1 && JSON.parse(f.payload).reqId === 1));
  await c.waitClosed();
  await stillServed(env);
});

test('websocket: a frame announcing 1 MiB gets close 1009 from its header', async (t) => {
  const env = await setup(t);
  const c = await rawWs(env.srv.devPort, 'bigframe-dev');
  t.after(() => c.sock.destroy());
  const hdr = Buffer.alloc(14);
  hdr[0] = 0x82;        // FIN, binary
  hdr[1] = 0x80 | 127;  // masked, 64-bit length
  hdr.writeBigUInt64BE(BigInt(1024 * 1024), 2);
  crypto.randomBytes(4).copy(hdr, 10);
  c.sock.write(hdr);    // no payload: the header alone must be refused
  const cl = await closeFrame(c);
  assert.equal(cl.code, 1009, `close reason: ${cl.reason}`);
  await c.waitClosed();
  await stillServed(env);
});

// ---- slow HTTP head ---------------------------------------------------------------

test('a client sending its HTTP head one byte per second is cut at the head timeout', async (t) => {
  const env = await setup(t, ['--head-timeout', String(HEAD_TIMEOUT)]);
  const c = rawClient(env.srv.devPort);
  t.after(() => c.sock.destroy());
  await c.connected;
  const head = Buffer.from(`GET /v1/ws?token=${h.token('slow-dev')} HTTP/1.1\r\n` +
    'Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\n` +
    'Sec-WebSocket-Version: 13\r\n\r\n', 'latin1');
  let i = 0;
  const t0 = Date.now();
  c.sock.write(head.subarray(i, ++i));
  const drip = setInterval(() => {
    if (c.closedAt || i >= head.length) return;
    c.sock.write(head.subarray(i, ++i));
  }, 1000);
  t.after(() => clearInterval(drip));
  // The loop is not held up meanwhile: the good device is served.
  await stillServed(env, 'during the slow head');
  await c.waitClosed(HEAD_TIMEOUT * 1000 + 3000);
  clearInterval(drip);
  const dt = c.closedAt - t0;
  assert.ok(dt >= HEAD_TIMEOUT * 1000 - 100, `cut after ${dt} ms, before the head timeout`);
  assert.ok(dt <= HEAD_TIMEOUT * 1000 + 2000, `cut after ${dt} ms, head timeout ${HEAD_TIMEOUT} s`);
  assert.ok(i < head.length, 'the head was still incomplete when cut');
  const text = c.data.toString('latin1');
  assert.ok(text === '' || /^HTTP\/1\.1 408 /.test(text),
    `expected 408 or a bare close, got ${JSON.stringify(text.slice(0, 80))}`);
  await stillServed(env);
});
