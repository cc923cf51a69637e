'use strict';
// Logs never hold secrets (src/core/log.h: no API keys, app secrets, device
// tokens or HMACs).  One `herald serve --log-level debug` with an app whose
// secret and API key are long distinctive strings, then a workload that hands
// those secrets and tokens to herald in every way a client can: raw TCP
// hello (good, forged, expired token), WebSocket with the token in the query
// and in an Authorization header (and on a wrong path), pushes over HTTP with
// the right and a wrong Bearer key, a TARS call with both keys, and the
// `herald token`, `herald listen` and `herald push` CLIs.  Afterwards none of
// the output (serve's stdout and stderr, every CLI's stderr, the admin pages)
// may contain the key, the secret, a full token or a token's signature part.
//
//   HERALD_BUILD=build NODE_PATH=$PWD/tests/js/node_modules \
//     node --test tests/integration/log_secrets.test.js
const test = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const WebSocket = require('ws');
const Tars = require('@tars/stream');
const rpc = require('@tars/rpc');
const h = require('./helpers');

test.after(() => rpc.client.destroy());

const APP = 'logsec';
const SECRET = 'ZzAppSecretLogLeakProbe7f3a9c1e5b2d8f4a6c0e9b7d5f3a1c8e';
const KEY = 'KkApiKeyLogLeakProbe2b9e4f7a1c6d3e8b5a0f9c2e7d4b1a6f';
const WRONG_KEY = 'WwWrongApiKeyLogLeakProbe5e1d9c3b7a2f6e0d4c8b';
const FORGE_SECRET = 'FfForgerySecretLogLeakProbe3c7e1a9d5b2f8e4c';

// Runs a herald CLI to completion (or kills it after ms); never throws.
function cli(args, ms = 10000) {
  return new Promise((resolve) => {
    const p = spawn(h.HERALD, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    h.live.add(p);
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => p.kill('SIGTERM'), ms);
    p.on('exit', (code, sig) => {
      clearTimeout(timer);
      h.live.delete(p);
      resolve({ args, code, sig, out, err });
    });
  });
}

// A long-running CLI (herald listen); stop() sends SIGTERM and waits.
function bg(args) {
  const p = spawn(h.HERALD, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  h.live.add(p);
  const st = { args, out: '', err: '', proc: p };
  p.stdout.on('data', (d) => { st.out += d; });
  p.stderr.on('data', (d) => { st.err += d; });
  st.exited = new Promise((resolve) => p.on('exit', (code) => { h.live.delete(p); resolve(code); }));
  st.stop = async () => { if (p.exitCode === null && !p.signalCode) p.kill('SIGTERM'); return st.exited; };
  return st;
}

async function until(cond, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what} not met in time`);
    await h.sleep(25);
  }
}

function wsOpen(url, opts) {
  const ws = new WebSocket(url, undefined, opts);
  ws.on('error', () => {});
  ws.done = new Promise((resolve) => {
    ws.once('open', () => resolve('open'));
    ws.once('unexpected-response', (_req, res) => resolve(`http ${res.statusCode}`));
    ws.once('close', () => resolve('closed'));
    ws.once('error', (e) => resolve(`error ${e.message}`));
  });
  return ws;
}

// ---- a one-operation TARS PushAPI proxy (pushSingleDevice), from PushAPI.jce ----

function defStruct(name, fields) {
  const C = function () { for (const [, n, , def] of fields) this[n] = def(); this._classname = name; };
  C._classname = name;
  C._write = (os, tag, v) => os.writeStruct(tag, v);
  C._read = (is, tag, def) => is.readStruct(tag, true, def);
  C._readFrom = (is) => {
    const v = new C();
    for (const [tag, n, req, , r] of fields) v[n] = r(is, tag, req);
    return v;
  };
  C.new = () => new C();
  C.create = (is) => C._readFrom(is);
  C.prototype._writeTo = function (os) { for (const [tag, n, , , , w] of fields) w(os, tag, this[n]); };
  return C;
}
const str = () => [() => '', (is, t, q) => is.readString(t, q, ''), (os, t, v) => os.writeString(t, v)];
const i32 = (d) => [() => d, (is, t, q) => is.readInt32(t, q, d), (os, t, v) => os.writeInt32(t, v)];
const PushMessage = defStruct('herald.PushMessage', [
  [0, 'requestId', false, ...str()],
  [1, 'payload', false, () => new Tars.BinBuffer(), (is, t, q) => is.readBytes(t, q, Tars.BinBuffer), (os, t, v) => os.writeBytes(t, v)],
  [2, 'ttl', false, ...i32(86400)],
  [3, 'collapseKey', false, ...str()],
  [4, 'needAck', false, () => true, (is, t, q) => is.readBoolean(t, q, true), (os, t, v) => os.writeBoolean(t, v)],
]);
const msgField = [() => new PushMessage(), (is, t, q) => is.readStruct(t, q, PushMessage), (os, t, v) => os.writeStruct(t, v)];
const SingleReq = defStruct('herald.PushSingleDeviceReq', [
  [0, 'apiKey', true, ...str()], [1, 'deviceId', true, ...str()], [2, 'msg', true, ...msgField],
]);
const SingleRsp = defStruct('herald.PushSingleDeviceRsp', [
  [0, 'ret', true, ...i32(0)], [1, 'msgId', false, ...str()], [2, 'state', false, ...i32(0)],
]);
function PushAPIProxy() { this._name = undefined; this._worker = undefined; }
PushAPIProxy.prototype.setTimeout = function (t) { this._worker.timeout = t; };
PushAPIProxy.prototype.pushSingleDevice = function (req) {
  const os = new Tars.TarsOutputStream();
  os.writeStruct(1, req);
  return this._worker.tars_invoke('pushSingleDevice', os.getBinBuffer()).then((data) => {
    const is = new Tars.TarsInputStream(data.response.sBuffer);
    return { ret: is.readInt32(0, true, 0), rsp: is.readStruct(2, true, SingleRsp) };
  });
};

async function tarsPush(srv, apiKey, deviceId) {
  const p = rpc.client.stringToProxy(PushAPIProxy,
    `herald.PushServer.PushAPIObj@tcp -h 127.0.0.1 -p ${srv.tarsPort} -t 60000`);
  p.setTimeout(5000);
  const q = new SingleReq();
  q.apiKey = apiKey;
  q.deviceId = deviceId;
  q.msg = new PushMessage();
  q.msg.payload = new Tars.BinBuffer(Buffer.from('tars payload'));
  return p.pushSingleDevice(q);
}

// ---- the test -------------------------------------------------------------------

test('no secret, API key, token or token signature reaches any log', async (t) => {
  assert.ok(h.serveHas('--log-level'), 'serve has --log-level');
  const srv = await h.startServe(t, ['--app', `${APP}:${SECRET}:${KEY}`, '--log-level', 'debug',
    ...(h.serveHas('--admin-port') ? ['--admin-port', '0'] : [])]);
  const tokens = [];
  const mint = (dev, o = {}) => { const x = h.token(dev, { app: APP, secret: SECRET, ...o }); tokens.push(x); return x; };
  const clis = [];
  const run = async (args, ms) => { const r = await cli(args, ms); clis.push(r); return r; };

  // `herald token` itself (stderr captured too)
  const tokRun = await run(['token', '--app', APP, '--device', 'cli-dev', '--secret', SECRET]);
  assert.equal(tokRun.code, 0, tokRun.err);
  tokens.push(tokRun.out.trim());

  const good = mint('tcp-good');
  const forged = h.token('tcp-forged', { app: APP, secret: FORGE_SECRET });
  const expired = h.expiredToken('tcp-expired', SECRET, APP);
  tokens.push(forged, expired);

  // raw TCP hello: good, forged, expired, garbage-with-signature
  const dGood = new h.TcpDevice(srv.devPort);
  t.after(() => dGood.destroy());
  const hr = await dGood.hello(good);
  assert.equal(h.dec('HelloRsp', hr.body).ret ?? 0, 0);
  for (const bad of [forged, expired, `${good}x`, `${APP}.tcp-good.${good.split('.')[3]}`]) {
    const d = new h.TcpDevice(srv.devPort);
    try { await d.hello(bad); } catch (_) { /* refused by closing: fine */ }
    d.destroy();
  }

  // WebSocket: query, Authorization header, forged/expired, wrong path, bad scheme
  const wsQ = wsOpen(`ws://127.0.0.1:${srv.devPort}/v1/ws?token=${mint('ws-query')}`);
  const wsH = wsOpen(`ws://127.0.0.1:${srv.devPort}/v1/ws`,
    { headers: { authorization: `Bearer ${mint('ws-header')}` } });
  t.after(() => { wsQ.terminate(); wsH.terminate(); });
  assert.equal(await wsQ.done, 'open');
  assert.equal(await wsH.done, 'open');
  const wsBad = [
    wsOpen(`ws://127.0.0.1:${srv.devPort}/v1/ws?token=${forged}`),
    wsOpen(`ws://127.0.0.1:${srv.devPort}/v1/ws`, { headers: { authorization: `Bearer ${expired}` } }),
    wsOpen(`ws://127.0.0.1:${srv.devPort}/v1/nope?token=${mint('ws-path')}`),
    wsOpen(`ws://127.0.0.1:${srv.devPort}/v1/ws`, { headers: { authorization: `Basic ${mint('ws-basic')}` } }),
    wsOpen(`ws://127.0.0.1:${srv.devPort}/v1/ws?token=${mint('ws-both')}&token=${forged}`),
  ];
  for (const w of wsBad) { await w.done; w.terminate(); }

  // HTTP pushes: right key, wrong key, malformed Authorization, key in a body/query
  let r = await h.push(srv, { deviceId: 'tcp-good', payload: 'http ok' }, { key: KEY });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  await dGood.waitFor((p) => p.cmd === h.CMD.PUSH);
  r = await h.push(srv, { deviceId: 'tcp-good', payload: 'http bad' }, { key: WRONG_KEY });
  assert.equal(r.status, 401);
  r = await h.push(srv, { deviceId: 'ws-query', payload: 'http ok 2' }, { key: KEY, path: '/v1/push/devices' });
  await fetch(`${srv.api}/v1/push/device`, {
    method: 'POST', headers: { authorization: `Token ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ deviceId: 'x', payload: 'y' }),
  }).then((x) => x.text());
  await fetch(`${srv.api}/v1/push/device?key=${KEY}`, {
    method: 'POST', headers: { authorization: `Bearer ${WRONG_KEY}`, 'content-type': 'application/json' },
    body: `{"deviceId":"x","payload":"y","apiKey":"${KEY}",`,
  }).then((x) => x.text());
  await fetch(`${srv.api}/v1/devices/tcp-good`, { headers: { authorization: `Bearer ${KEY}` } }).then((x) => x.text());
  await fetch(`${srv.api}/v1/nope/${SECRET}?token=${good}`, { headers: { authorization: `Bearer ${KEY}` } }).then((x) => x.text());

  // TARS: right key and wrong key
  if (srv.tarsPort) {
    const ok = await tarsPush(srv, KEY, 'tcp-good');
    assert.equal(ok.ret, 0);
    assert.equal(ok.rsp.ret, 0);
    const bad = await tarsPush(srv, WRONG_KEY, 'tcp-good');
    assert.notEqual(bad.rsp.ret, 0);
  }

  // CLIs: listen (token, secret, ws, forged), push (right/wrong key, HTTP/TARS)
  const server = `127.0.0.1:${srv.devPort}`;
  const l1 = bg(['listen', '--server', server, '--token', mint('cli-l1')]);
  const l2 = bg(['listen', '--server', server, '--app', APP, '--device', 'cli-l2', '--secret', SECRET, '--ws']);
  t.after(() => { l1.stop(); l2.stop(); });
  await until(() => l1.err.includes('connected') && l2.err.includes('connected'), 5000, 'listeners connected');
  const lForged = await run(['listen', '--server', server, '--token', forged], 5000);
  const lForgedWs = await run(['listen', '--server', server, '--token', expired, '--ws'], 5000);
  assert.notEqual(lForged.code, 0);
  assert.notEqual(lForgedWs.code, 0);
  const api = ['--api', srv.api];
  let p = await run(['push', 'device', ...api, '--key', KEY, '--device', 'cli-l1', '--payload', 'cli 1']);
  assert.equal(p.code, 0, p.err);
  p = await run(['push', 'devices', ...api, '--key', KEY, '--device', 'cli-l1', '--device', 'cli-l2', '--payload', 'cli 2']);
  assert.equal(p.code, 0, p.err);
  p = await run(['push', 'device', ...api, '--key', WRONG_KEY, '--device', 'cli-l1', '--payload', 'cli bad']);
  assert.equal(p.code, 1);
  if (srv.tarsPort) {
    const tars = ['--tars', `127.0.0.1:${srv.tarsPort}`];
    p = await run(['push', 'online', ...tars, '--key', KEY, '--payload', 'tars cli']);
    assert.equal(p.code, 0, p.err);
    p = await run(['push', 'all', ...tars, '--key', WRONG_KEY, '--payload', 'tars cli bad']);
    assert.equal(p.code, 1);
  }
  await until(() => l1.out.split('\n').filter(Boolean).length >= 2 && l2.out.includes('cli 2'), 5000, 'listeners got pushes');

  // admin pages (not logs, but an operator-visible surface)
  const admin = /admin (http:\/\/[^\s]+)/.exec(srv.stdout());
  let adminText = '';
  if (admin) {
    for (const page of ['/metrics', '/dashboard', '/healthz']) {
      adminText += await fetch(`${admin[1]}${page}`).then((x) => x.text()).catch(() => '');
    }
  }

  // stop everything, then look
  await l1.stop(); await l2.stop();
  wsQ.terminate(); wsH.terminate(); dGood.destroy();
  await h.sleep(100);
  await srv.stop();

  const needles = [['app secret', SECRET], ['API key', KEY], ['wrong API key', WRONG_KEY]];
  for (const tok of tokens) {
    needles.push([`token ${tok.split('.')[1]}`, tok]);
    needles.push([`token signature ${tok.split('.')[1]}`, tok.split('.')[3]]);
  }
  const sources = [['serve stdout', srv.stdout()], ['serve stderr', srv.stderr()], ['admin pages', adminText]];
  for (const s of [l1, l2, ...clis]) {
    const label = `${s.args.slice(0, 2).join(' ')}`;
    sources.push([`${label} stderr`, s.err]);
    // stdout of `herald token` is the token itself, by design
    if (s.args[0] !== 'token') sources.push([`${label} stdout`, s.out]);
  }
  assert.ok(srv.stderr().includes('level=debug') || srv.stderr().length > 0, 'serve wrote its log lines');
  const leaks = [];
  for (const [where, text] of sources) {
    for (const [what, needle] of needles) {
      if (needle && text.includes(needle)) {
        const line = text.split('\n').find((x) => x.includes(needle));
        leaks.push(`${where} contains the ${what}: ${line}`);
      }
    }
  }
  assert.deepEqual(leaks, []);
});
