'use strict';
// The short-lived HTTP form (POST /v1/yyb) for a board that polls: SYNC
// answers with the stored messages themselves (no pushes can follow the
// answer), at most `limit` with `more`, and an ACK there moves the
// device's cursor so the next SYNC starts after it.
const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');

const CMD_SYNC = 7;

// One exchange: the preface and these packages in, the answer's packages out.
async function exchange(srv, tok, pkgs) {
  const frames = pkgs.map((p) => h.frame(p));
  const body = Buffer.concat([h.preface(), ...frames]);
  const r = await fetch(`http://127.0.0.1:${srv.devPort}/v1/yyb`, {
    method: 'POST', body, headers: { authorization: `Bearer ${tok}` },
    signal: AbortSignal.timeout(5000),
  });
  assert.equal(r.status, 200, await r.clone().text());
  let b = Buffer.from(await r.arrayBuffer());
  assert.equal(b.subarray(0, 3).toString(), 'YYB');
  b = b.subarray(7);
  const out = [];
  while (b.length >= 4) {
    const n = b.readUInt32BE(0);
    out.push(h.dec('Package', b.subarray(4, n)));
    b = b.subarray(n);
  }
  return out;
}

function syncReq(fields, reqId = 11) {
  return { cmd: CMD_SYNC, reqId, body: h.enc('SyncReq', fields) };
}

test('POST /v1/yyb SYNC returns the stored messages; ACK there moves the cursor', async (t) => {
  const srv = await h.startServe(t);
  const dev = `board-${process.pid}`;
  const tok = h.token(dev);
  // Registered by its first SYNC (an empty inbox), so broadcasts after it count.
  let ans = await exchange(srv, tok, [syncReq({})]);
  assert.equal(ans.length, 1);
  assert.equal(ans[0].cmd, CMD_SYNC);
  assert.equal(ans[0].reqId, 11);
  assert.equal(h.dec('SyncRsp', ans[0].body).msgs.length, 0);

  const ids = [];
  for (let i = 0; i < 5; i++) {
    const r = await h.push(srv, { deviceId: dev, payload: `m${i}`, ttl: 600 });
    assert.equal(r.status, 200);
    ids.push(r.json.msgId);
  }
  const b = await h.push(srv, { payload: 'to all', ttl: 600 }, { path: '/v1/push/all' });
  assert.equal(b.status, 200);

  ans = await exchange(srv, tok, [syncReq({ limit: 3 })]);
  let rsp = h.dec('SyncRsp', ans[0].body);
  assert.equal(ans[0].ret, 0);
  assert.deepEqual(rsp.msgs.map((m) => m.msgId), ids.slice(0, 3));
  assert.deepEqual(rsp.msgs.map((m) => Number(m.seq)), [1, 2, 3]);
  assert.equal(rsp.msgs[0].payload.toString(), 'm0');
  assert.equal(rsp.more, true);

  // Ack the first three and sync again in one exchange: the answers come
  // in order, and the sync starts after what the request acks.
  ans = await exchange(srv, tok, [
    { cmd: h.CMD.ACK, reqId: 12, body: h.enc('AckReq', { inboxSeq: 3 }) },
    syncReq({ inboxSeq: 3 }, 13),
  ]);
  assert.deepEqual(ans.map((p) => p.cmd), [h.CMD.ACK, CMD_SYNC]);
  rsp = h.dec('SyncRsp', ans[1].body);
  assert.deepEqual(rsp.msgs.map((m) => m.msgId), [...ids.slice(3), b.json.msgId]);
  assert.deepEqual(rsp.msgs.map((m) => Number(m.timeline)), [0, 0, 1]);
  assert.equal(rsp.more, false);

  // The ack reached the store: a SYNC from 0 now starts after seq 3.
  const end = Date.now() + 5000;
  for (;;) {
    ans = await exchange(srv, tok, [syncReq({})]);
    rsp = h.dec('SyncRsp', ans[0].body);
    if (rsp.msgs.length && rsp.msgs[0].msgId === ids[3]) break;
    assert.ok(Date.now() < end, `the ack never reached the store: ${rsp.msgs.map((m) => m.msgId)}`);
    await h.sleep(100);
  }
  // Answered over HTTP counts as written; acked there, as acked.
  let tl;
  for (const until = Date.now() + 5000; Date.now() < until; await h.sleep(100)) {
    const st = await fetch(`${srv.api}/v1/messages/${ids[0]}`, { headers: { authorization: `Bearer ${h.KEY}` } });
    tl = (await st.json()).timeline;
    if (tl.written.count >= 1 && tl.acked.count >= 1) break;
  }
  assert.ok(tl.written.count >= 1 && tl.acked.count >= 1, JSON.stringify(tl));
});
