'use strict';
// Which devices a push reaches (issue 12, "Faults and hostile load"):
//  * a multi-device push names each device once, however often the
//    request repeats it: one inbox row, one delivery, and the answer
//    counts the repeats (HTTP and TARS);
//  * an app (or one request) can refuse pushes to devices that never
//    connected, instead of storing them for the ttl (unknownDevice).
//
//   HERALD_BUILD=build NODE_PATH=$PWD/tests/js/node_modules \
//     node --test tests/integration/push_targets.test.js
const test = require('node:test');
const assert = require('node:assert');
const { spawnSync } = require('node:child_process');
const WebSocket = require('ws');
const h = require('./helpers');

let srv;
test.before(async () => { srv = await h.startServe(null, ['--admin-port', '0']); });
test.after(async () => { if (srv) await srv.stop(); });

async function until(cond, ms = 8000, what = 'condition') {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what} not met in time`);
    await h.sleep(25);
  }
}

function openWs(id) {
  const ws = new WebSocket(`ws://127.0.0.1:${srv.devPort}/v1/ws?token=${h.token(id)}`);
  ws.pushes = [];
  ws.on('message', (d, bin) => { if (!bin) { const m = JSON.parse(d); if (m.cmd === 'push') ws.pushes.push(m); } });
  ws.on('error', () => {});
  return new Promise((resolve, reject) => { ws.once('open', () => resolve(ws)); ws.once('error', reject); });
}
function closeWs(ws) {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    ws.once('close', resolve);
    ws.terminate();
  });
}

async function device(id) {
  const r = await fetch(`${srv.api}/v1/devices/${encodeURIComponent(id)}`,
    { headers: { authorization: `Bearer ${h.KEY}` } });
  assert.equal(r.status, 200);
  return r.json();
}

// Online and announced to the push service (its connect-time sync done).
async function online(id) {
  const ws = await openWs(id);
  await until(async () => (await device(id)).online, 5000, `${id} online`);
  return ws;
}

// ---- item 1: repeated deviceIds -------------------------------------------

test('multi push: 10000 copies of one id store and deliver it once, and say so', async () => {
  const id = `dup-${process.pid}`;
  const ws = await online(id);
  try {
    const r = await h.push(srv, { deviceIds: Array(10000).fill(id), payload: 'once' },
      { path: '/v1/push/devices' });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.stored, 1);
    assert.equal(r.json.online, 1);
    assert.equal(r.json.duplicates, 9999);
    assert.deepEqual(r.json.rejected, {});
    await until(() => ws.pushes.length >= 1, 5000, 'the push');
    await h.sleep(500); // room for copies that should never come
    assert.equal(ws.pushes.filter((m) => m.msgId === r.json.msgId).length, 1);
    const d = await device(id);
    assert.equal(d.inboxLastSeq, 1, 'one inbox row, one seq');
  } finally {
    await closeWs(ws);
  }
});

test('multi push: repeats of valid and invalid ids are counted, and count against the limit', async () => {
  const a = `dupa-${process.pid}`, b = `dupb-${process.pid}`;
  const r = await h.push(srv, { deviceIds: [a, b, a, 'bad id', b, 'bad id', a], payload: 'x' },
    { path: '/v1/push/devices' });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.stored, 2);
  assert.equal(r.json.duplicates, 4);
  assert.deepEqual(r.json.rejected, { 'bad id': 1 });
  assert.equal((await device(a)).inboxLastSeq, 1);
  assert.equal((await device(b)).inboxLastSeq, 1);
  // Repeats still count against the 10000-id limit of the request.
  const big = await h.push(srv, { deviceIds: Array(10001).fill(a), payload: 'x' },
    { path: '/v1/push/devices' });
  assert.equal(big.status, 400);
  assert.equal(big.json.error.code, 'too_many_devices');
});

test('TARS pushMultiDevice: repeats are dropped and counted in duplicates', () => {
  const id = `duptars-${process.pid}`;
  const args = ['push', 'devices', '--tars', `127.0.0.1:${srv.tarsPort}`, '--key', h.KEY,
    '--payload', 'tars'];
  for (let i = 0; i < 5; i++) args.push('--device', id);
  const r = spawnSync(h.HERALD, args, { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const rsp = JSON.parse(r.stdout);
  assert.equal(rsp.ret, 0);
  assert.equal(rsp.stored, 1);
  assert.equal(rsp.duplicates, 4);
});

// ---- item 5: pushes to devices that never connected -------------------------

function herald(args) {
  const r = spawnSync(h.HERALD, args, { encoding: 'utf8', timeout: 10000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('unknownDevice: store stays the default; reject refuses a typo before anything is stored', async () => {
  const typo = `typo-${process.pid}`;
  const dflt = await h.push(srv, { deviceId: `${typo}-d`, payload: 'kept' });
  assert.equal(dflt.status, 200);
  assert.equal(dflt.json.state, 'stored');
  const r = await h.push(srv, { deviceId: typo, payload: 'x', unknownDevice: 'reject' });
  assert.equal(r.status, 404, JSON.stringify(r.json));
  assert.equal(r.json.error.code, 'unknown_device');
  assert.equal(r.json.msgId, undefined);
  const d = await device(typo);
  assert.equal(d.known, false);
  assert.equal(d.inboxLastSeq, 0, 'nothing stored');
  // A device that was pushed to ("stored") but never connected is unknown too.
  const again = await h.push(srv, { deviceId: `${typo}-d`, payload: 'x', unknownDevice: 'reject' });
  assert.equal(again.status, 404);
  const bad = await h.push(srv, { deviceId: typo, payload: 'x', unknownDevice: 'maybe' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.code, 'invalid_argument');
});

test('unknownDevice reject: devices that connected (now or before) get the push', async () => {
  const now = `known-now-${process.pid}`, before = `known-before-${process.pid}`;
  const ws1 = await online(before);
  await closeWs(ws1);
  await until(async () => !(await device(before)).online, 5000, 'offline');
  const r1 = await h.push(srv, { deviceId: before, payload: 'later', unknownDevice: 'reject' });
  assert.equal(r1.status, 200, JSON.stringify(r1.json));
  assert.equal(r1.json.state, 'stored');
  const ws2 = await openWs(now); // its first connect: online before its sighting commits
  try {
    await until(async () => (await device(now)).online, 5000, 'online');
    const r2 = await h.push(srv, { deviceId: now, payload: 'hi', unknownDevice: 'reject' });
    assert.equal(r2.status, 200, JSON.stringify(r2.json));
    await until(() => ws2.pushes.some((m) => m.payload === 'hi'), 5000, 'delivered');
  } finally {
    await closeWs(ws2);
  }
  // Multi: unknown ids go in rejected with 7 (PUSH_ERR_UNKNOWN_DEVICE), the rest get it.
  const u1 = `nobody1-${process.pid}`, u2 = `nobody2-${process.pid}`;
  const m = await h.push(srv, { deviceIds: [before, u1, 'bad id', u2, u1], payload: 'm', unknownDevice: 'reject' },
    { path: '/v1/push/devices' });
  assert.equal(m.status, 200, JSON.stringify(m.json));
  assert.equal(m.json.stored, 1);
  assert.equal(m.json.duplicates, 1);
  assert.deepEqual(m.json.rejected, { [u1]: 7, [u2]: 7, 'bad id': 1 });
  assert.equal((await device(u1)).inboxLastSeq, 0);
  const none = await h.push(srv, { deviceIds: [u1, u2], payload: 'm', unknownDevice: 'reject' },
    { path: '/v1/push/devices' });
  assert.equal(none.status, 404);
  assert.equal(none.json.error.code, 'unknown_device');
});

test('unknown-device as the app setting (herald app set beside the server), overridden per request, over TARS too', async () => {
  const set = herald(['app', 'set', 'test', 'unknown-device=reject', '--db', srv.db]);
  assert.equal(set.code, 0, set.err);
  const id = `app-typo-${process.pid}`;
  try {
    // The key cache holds an app's settings for up to 3 s.
    await until(async () => (await h.push(srv, { deviceId: id, payload: 'x' })).status === 404,
      8000, 'the setting applies');
    const keep = await h.push(srv, { deviceId: id, payload: 'x', unknownDevice: 'store' });
    assert.equal(keep.status, 200);
    assert.equal(keep.json.state, 'stored');
    const tars = herald(['push', 'device', '--tars', `127.0.0.1:${srv.tarsPort}`, '--key', h.KEY,
      '--device', `${id}-t`, '--payload', 'x']);
    assert.equal(tars.code, 1, tars.out + tars.err);
    assert.equal(JSON.parse(tars.out).ret, 7);
    const tarsKeep = herald(['push', 'device', '--tars', `127.0.0.1:${srv.tarsPort}`, '--key', h.KEY,
      '--device', `${id}-t`, '--payload', 'x', '--unknown-device', 'store']);
    assert.equal(tarsKeep.code, 0, tarsKeep.out + tarsKeep.err);
    const list = herald(['app', 'list', '--db', srv.db]);
    assert.match(list.out, /^test\s.*unknown-device=reject/m);
  } finally {
    assert.equal(herald(['app', 'set', 'test', 'unknown-device=store', '--db', srv.db]).code, 0);
  }
  await until(async () => (await h.push(srv, { deviceId: `${id}-2`, payload: 'x' })).status === 200,
    8000, 'the setting is back');
});
