'use strict';
// A device's ack answer says what was recorded (issue 12): an ack cursor
// out of range (2^63-1) is cut to the highest seq the connection was
// sent, the AckRsp carries that, and the store records the same.
//
//   HERALD_BUILD=build NODE_PATH=$PWD/tests/js/node_modules \
//     node --test tests/integration/device_ack.test.js
const test = require('node:test');
const assert = require('node:assert');
const WebSocket = require('ws');
const h = require('./helpers');

async function until(cond, ms = 8000, what = 'condition') {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what} not met in time`);
    await h.sleep(25);
  }
}

async function device(srv, id) {
  const r = await fetch(`${srv.api}/v1/devices/${encodeURIComponent(id)}`,
    { headers: { authorization: `Bearer ${h.KEY}` } });
  assert.equal(r.status, 200);
  return r.json();
}

test('WebSocket ack of 2^63-1 is answered and recorded as the last seq sent', async (t) => {
  const srv = await h.startServe(t, ['--admin-port', '0']);
  const id = `ack-max-${process.pid}`;
  const ws = new WebSocket(`ws://127.0.0.1:${srv.devPort}/v1/ws?token=${h.token(id)}`);
  t.after(() => ws.terminate());
  const msgs = [];
  ws.on('message', (d, bin) => { if (!bin) msgs.push(JSON.parse(d)); });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  await until(async () => (await device(srv, id)).online, 5000, 'online');
  for (const p of ['one', 'two']) {
    const r = await h.push(srv, { deviceId: id, payload: p });
    assert.equal(r.status, 200, JSON.stringify(r.json));
  }
  await until(() => msgs.filter((m) => m.cmd === 'push').length === 2, 5000, 'two pushes');
  const last = Math.max(...msgs.filter((m) => m.cmd === 'push').map((m) => m.seq));
  assert.equal(last, 2);
  // The raw text: 9223372036854775807 has no exact JavaScript number.
  ws.send('{"cmd":"ack","reqId":5,"inboxSeq":9223372036854775807}');
  await until(() => msgs.some((m) => m.cmd === 'ack' || m.cmd === 'error'), 5000, 'the answer');
  const a = msgs.find((m) => m.cmd === 'ack' || m.cmd === 'error');
  assert.equal(a.cmd, 'ack', JSON.stringify(a));
  assert.equal(a.reqId, 5);
  assert.equal(a.inboxSeq, last, 'the answer is what was recorded');
  await until(async () => (await device(srv, id)).lastAckedSeq === last, 5000, 'the store records it');
  const d = await device(srv, id);
  assert.equal(d.lastAckedSeq, last);
  assert.equal(d.inboxDepth, 0);
  // A later push still gets a seq above the recorded cursor and is delivered.
  const r = await h.push(srv, { deviceId: id, payload: 'three' });
  assert.equal(r.json.state, 'written');
  await until(() => msgs.some((m) => m.cmd === 'push' && m.payload === 'three'), 5000, 'third push');
  assert.equal(msgs.find((m) => m.payload === 'three').seq, 3);
});
