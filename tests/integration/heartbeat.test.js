'use strict';
// Adaptive heartbeat: a raw TCP device announcing a 2 s interval and then
// going silent is closed within interval*1.5 + grace (defaults: factor 150%,
// grace 5 s -> 8 s), and not before the interval; one that keeps beating
// every 2 s stays connected.
const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');

const INTERVAL = 2, BOUND_MS = (INTERVAL * 1.5 + 5) * 1000;

test('silent device is closed within the idle bound; a beating one stays', async (t) => {
  const srv = await h.startServe(t, ['--hb-min', '1']);
  const silent = new h.TcpDevice(srv.devPort);
  const beating = new h.TcpDevice(srv.devPort);
  t.after(() => { silent.destroy(); beating.destroy(); });
  await Promise.all([silent.connected, beating.connected]);
  const t0 = Date.now();
  assert.equal((await silent.hello(h.token('hb-silent'), INTERVAL)).ret, 0);
  assert.equal((await beating.hello(h.token('hb-beat'), INTERVAL)).ret, 0);
  const timer = setInterval(() => beating.send(h.CMD.HEARTBEAT, 'HeartbeatReq', { interval: INTERVAL }), INTERVAL * 1000);
  t.after(() => clearInterval(timer));
  await silent.waitClosed(BOUND_MS + 1000 + 500);
  const dt = silent.closedAt - t0;
  assert.ok(dt >= INTERVAL * 1000, `closed after ${dt} ms, before the interval`);
  assert.ok(dt <= BOUND_MS + 1000, `closed after ${dt} ms, bound ${BOUND_MS}`);
  // The beating one outlives the silent one's bound by a margin.
  await h.sleep(Math.max(0, BOUND_MS + 2000 - (Date.now() - t0)));
  assert.equal(beating.closedAt, null, 'beating device was closed');
  const r = await h.push(srv, { deviceId: 'hb-beat', payload: 'still here' });
  assert.equal(r.json.state, 'written');
  const p = await beating.waitFor((x) => x.cmd === h.CMD.PUSH);
  assert.equal(h.dec('PushBatch', p.body).msgs[0].payload.toString(), 'still here');
});
