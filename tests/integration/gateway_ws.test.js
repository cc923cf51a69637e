'use strict';
// The npm `ws` client (not ours) against the gateway: token in the query
// or as a Bearer header, JSON text frames by default, binary JCE frames
// with the herald.jce subprotocol; a push sent through the HTTP API arrives
// and is acked.
const test = require('node:test');
const assert = require('node:assert');
const WebSocket = require('ws');
const h = require('./helpers');

function open(url, protocols, opts) {
  const ws = new WebSocket(url, protocols, opts);
  const msgs = [];
  const waiters = [];
  ws.on('message', (data, isBinary) => {
    msgs.push({ data, isBinary });
    for (const w of waiters.splice(0)) w();
  });
  ws.next = (pred = () => true, ms = 5000) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message')), ms);
    const check = () => {
      const i = msgs.findIndex(pred);
      if (i >= 0) { clearTimeout(timer); resolve(msgs.splice(i, 1)[0]); } else waiters.push(check);
    };
    check();
  });
  ws.opened = new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return ws;
}

const isPush = (m) => !m.isBinary && JSON.parse(m.data).cmd === 'push';

test('ws (JSON): token in the query, push arrives, ack accepted', async (t) => {
  const srv = await h.startServe(t);
  const ws = open(`ws://127.0.0.1:${srv.devPort}/v1/ws?token=${h.token('wsdev')}`);
  t.after(() => ws.terminate());
  await ws.opened;
  const r = await h.push(srv, { deviceId: 'wsdev', payload: 'héllo ws' });
  assert.equal(r.status, 200);
  assert.equal(r.json.state, 'written');
  const m = JSON.parse((await ws.next(isPush)).data);
  assert.equal(m.msgId, r.json.msgId);
  assert.equal(m.payload, 'héllo ws');
  ws.send(JSON.stringify({ cmd: 'ack', reqId: 7, msgIds: [m.msgId] }));
  const a = JSON.parse((await ws.next((x) => JSON.parse(x.data).reqId === 7)).data);
  assert.equal(a.cmd, 'ack');
  assert.equal(a.ret, 0);
});

test('ws: Authorization: Bearer header works too', async (t) => {
  const srv = await h.startServe(t);
  const ws = open(`ws://127.0.0.1:${srv.devPort}/v1/ws`, undefined,
    { headers: { authorization: `Bearer ${h.token('bearer-dev')}` } });
  t.after(() => ws.terminate());
  await ws.opened;
  const r = await h.push(srv, { deviceId: 'bearer-dev', payloadB64: Buffer.from([0, 1, 2, 255]).toString('base64') });
  assert.equal(r.status, 200);
  const m = JSON.parse((await ws.next(isPush)).data);
  assert.equal(m.msgId, r.json.msgId);
  assert.deepEqual(Buffer.from(m.payloadB64, 'base64'), Buffer.from([0, 1, 2, 255]));
});

test('ws (herald.jce): binary JCE frames decoded with @tars/stream', async (t) => {
  const srv = await h.startServe(t);
  const ws = open(`ws://127.0.0.1:${srv.devPort}/v1/ws?token=${h.token('jcedev')}`, ['herald.jce']);
  t.after(() => ws.terminate());
  await ws.opened;
  assert.equal(ws.protocol, 'herald.jce');
  const r = await h.push(srv, { deviceId: 'jcedev', payload: 'binary path' });
  assert.equal(r.status, 200);
  const raw = await ws.next((x) => x.isBinary && h.dec('Package', x.data).cmd === h.CMD.PUSH);
  const pkg = h.dec('Package', raw.data);
  const batch = h.dec('PushBatch', pkg.body);
  assert.equal(batch.msgs.length, 1);
  assert.equal(batch.msgs[0].msgId, r.json.msgId);
  assert.equal(batch.msgs[0].payload.toString(), 'binary path');
  // Ack by id, as a binary JCE package.
  ws.send(h.enc('Package', { cmd: h.CMD.ACK, reqId: 9, body: h.enc('AckReq', { msgIds: [r.json.msgId] }) }));
  const ack = await ws.next((x) => x.isBinary && h.dec('Package', x.data).reqId === 9);
  assert.equal(h.dec('Package', ack.data).ret, 0);
});

test('ws: a forged token is refused at the handshake', async (t) => {
  const srv = await h.startServe(t);
  const ws = new WebSocket(`ws://127.0.0.1:${srv.devPort}/v1/ws?token=${h.token('x', { secret: 'WRONG' })}`);
  const status = await new Promise((resolve) => {
    ws.on('unexpected-response', (req, res) => resolve(res.statusCode));
    ws.on('open', () => resolve('open'));
    ws.on('error', () => {});
  });
  ws.terminate();
  assert.equal(status, 401);
});
