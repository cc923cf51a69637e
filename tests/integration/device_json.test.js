'use strict';
// The device protocol's JSON mode as docs/protocol.md §3.3 states it:
// every error frame says which request it answers ("for"), a package that
// does not decode (also one that breaks the strict JSON rules) ends the
// session with close code 1008, and online-only
// messages acked by msgId are counted acked in their status.
const test = require('node:test');
const assert = require('node:assert');
const WebSocket = require('ws');
const h = require('./helpers');

function open(srv, dev) {
  const ws = new WebSocket(`ws://127.0.0.1:${srv.devPort}/v1/ws?token=${h.token(dev)}`);
  const st = { ws, msgs: [], closed: null };
  ws.on('message', (d, bin) => { if (!bin) st.msgs.push(JSON.parse(d)); });
  ws.on('close', (code) => { st.closed = code; });
  ws.on('error', () => {});
  st.opened = new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return st;
}

async function until(cond, ms, what) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what} not met in ${ms} ms`);
    await h.sleep(25);
  }
}

test('JSON errors say "for"; a wrong-typed field is ERR_BAD_PACKAGE and close 1008', async (t) => {
  const srv = await h.startServe(t);
  const d = open(srv, 'j1');
  await d.opened;
  d.ws.send(JSON.stringify({ cmd: 'frob', reqId: 5 }));
  await until(() => d.msgs.some((m) => m.cmd === 'error'), 3000, 'an error frame');
  const e = d.msgs.find((m) => m.cmd === 'error');
  assert.deepEqual([e.code, e.for, e.reqId], [1005, 'frob', 5]);
  d.ws.send(JSON.stringify({ cmd: 'heartbeat', reqId: 6, interval: 'soon' }));
  await until(() => d.closed !== null, 3000, 'the close');
  const bad = d.msgs.find((m) => m.cmd === 'error' && m.reqId === 6);
  assert.deepEqual([bad.code, bad.for], [1004, 'heartbeat']);
  assert.equal(d.closed, 1008);
});

// Device JSON is held to the push API's strictness (docs/protocol.md §3.3):
// a key twice, a \u0000, a raw control character or nesting over 64
// levels is a package that does not decode: ERR_BAD_PACKAGE, close 1008.
test('device JSON is strict: a key twice, \\u0000, deep nesting end the session', async (t) => {
  const srv = await h.startServe(t);
  const frames = [
    '{"cmd":"heartbeat","reqId":8,"interval":30,"interval":40}',
    '{"cmd":"heartbeat","reqId":8,"interval":30,"x":{"k":1,"k":1}}',
    '{"cmd":"ack","msgIds":["a\\u0000b"]}',
    `{"cmd":"heartbeat","x":${'['.repeat(65)}${']'.repeat(65)}}`,
  ];
  for (const [i, f] of frames.entries()) {
    const d = open(srv, `js${i}`);
    await d.opened;
    await until(() => d.msgs.some((m) => m.cmd === 'hello'), 3000, 'hello');
    d.ws.send(f);
    await until(() => d.closed !== null, 3000, `the close after ${f.slice(0, 40)}`);
    const e = d.msgs.find((m) => m.cmd === 'error');
    assert.ok(e, `an error frame for ${f.slice(0, 40)}`);
    assert.equal(e.code, 1004);
    assert.equal(d.closed, 1008);
  }
  // the same frame without the repeat is answered
  const d = open(srv, 'js-ok');
  await d.opened;
  d.ws.send('{"cmd":"heartbeat","reqId":9,"interval":40}');
  await until(() => d.msgs.some((m) => m.cmd === 'heartbeat' && m.reqId === 9), 3000, 'the answer');
  d.ws.close();
});

test('online-only messages acked by msgId count acked once, made-up ids not at all', async (t) => {
  const srv = await h.startServe(t);
  const d = open(srv, 'j2');
  await d.opened;
  await until(() => d.msgs.some((m) => m.cmd === 'hello'), 3000, 'hello');
  const r = await h.push(srv, { deviceId: 'j2', payload: 'now or never', ttl: 0 });
  assert.equal(r.json.state, 'written');
  await until(() => d.msgs.some((m) => m.cmd === 'push'), 3000, 'the push');
  const p = d.msgs.find((m) => m.cmd === 'push');
  assert.equal(p.timeline, 2);
  d.ws.send(JSON.stringify({ cmd: 'ack', msgIds: [p.msgId, p.msgId, 'f'.repeat(24), 'not-an-id'] }));
  d.ws.send(JSON.stringify({ cmd: 'ack', msgIds: [p.msgId] }));
  let tl;
  await until(async () => {
    const s = await fetch(`${srv.api}/v1/messages/${p.msgId}`, { headers: { authorization: `Bearer ${h.KEY}` } });
    if (s.status !== 200) return false;
    tl = (await s.json()).timeline;
    return tl.acked.count > 0;
  }, 5000, 'acked counted');
  await h.sleep(300); // a second count would have landed by now
  const s = await fetch(`${srv.api}/v1/messages/${p.msgId}`, { headers: { authorization: `Bearer ${h.KEY}` } });
  tl = (await s.json()).timeline;
  assert.equal(tl.acked.count, 1);
  assert.ok(tl.acked.at >= tl.accepted.at);
  d.ws.close();
});
