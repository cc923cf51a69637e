'use strict';
// Catching up after a reconnect (issue 12).  The connect-time sync used to
// write a device's whole stored backlog at once, so a healthy device that
// reads slower than loopback was cut as a slow consumer (10,000 x 1 KB:
// the npm ws client was cut after 3,770).  Now the backlog goes out in
// pages paced by the connection's pending output, and the slow-consumer
// cut is left to live pushes:
//   1. 10,000 x 1 KB stored for an offline device; it connects, reads
//      nothing for 1.5 s, then reads at about 2.5 MB/s: it gets all
//      10,000, in order, and is never cut;
//   2. a device that never reads, flooded with live pushes, is still cut.
const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');

const N = 10000;
const PAYLOAD = 'p'.repeat(1024);

async function metric(srv, name, labels = {}) {
  const text = await (await fetch(`${srv.admin}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] || '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

// n pushes to device over `par` keep-alive loops; every one must be 200.
async function store(srv, device, n, par = 16) {
  let next = 0;
  const bad = [];
  await Promise.all(Array.from({ length: par }, async () => {
    while (next < n) {
      const i = next++;
      const r = await h.push(srv, { deviceId: device, payload: `${i}:${PAYLOAD}`, needAck: true });
      if (r.status !== 200) bad.push(r);
    }
  }));
  assert.deepStrictEqual(bad, []);
}

test('a slow reader gets its whole stored backlog and is not cut', { timeout: 120000 }, async (t) => {
  const port = await h.freePort();
  const srv = await h.startServe(t, ['--no-fsync', '--admin-port', String(port),
    '--max-payload', '65536']);
  srv.admin = `http://127.0.0.1:${port}`;
  const t0 = Date.now();
  await store(srv, 'slow', N);
  t.diagnostic(`stored ${N} x 1 KB in ${Date.now() - t0} ms`);

  const d = new h.TcpDevice(srv.devPort);
  t.after(() => d.destroy());
  await d.connected;
  d.write(h.preface());
  d.send(h.CMD.HELLO, 'HelloReq', { token: h.token('slow'), heartbeat: 60 }, 1);
  d.sock.pause(); // the phone on a slow network: nothing read for a while
  // Its sync sends a page, finds the connection full and waits.
  let waiting = 0;
  for (const end = Date.now() + 1500; Date.now() < end && !waiting; await h.sleep(50)) {
    waiting = await metric(srv, 'herald_sync_waiting');
  }
  assert.strictEqual(waiting, 1, 'the sync waits for the connection to drain');
  await h.sleep(500);
  // Then one read of at most 64 KiB every 25 ms.
  const reader = setInterval(() => {
    d.sock.once('data', () => d.sock.pause());
    d.sock.resume();
  }, 25);
  t.after(() => clearInterval(reader));

  const seqs = [];
  let kicked = null;
  const t1 = Date.now();
  while (seqs.length < N && !d.closedAt && Date.now() - t1 < 60000) {
    for (const p of d.pkgs.splice(0)) {
      if (p.cmd === h.CMD.KICK) kicked = h.dec('Kick', p.body).reason;
      if (p.cmd !== h.CMD.PUSH) continue;
      for (const m of h.dec('PushBatch', p.body).msgs) seqs.push(Number(m.seq));
    }
    await h.sleep(50);
  }
  clearInterval(reader);
  t.diagnostic(`received ${seqs.length} in ${Date.now() - t1} ms, kicked ${kicked}, closed ${!!d.closedAt}`);
  assert.strictEqual(kicked, null, 'the device was kicked');
  assert.ok(!d.closedAt, 'the device was disconnected');
  assert.strictEqual(seqs.length, N);
  assert.deepStrictEqual(seqs, Array.from({ length: N }, (_, i) => i + 1), 'in order, each once');
  assert.strictEqual(await metric(srv, 'herald_slow_consumers_total'), 0);
  assert.strictEqual(await metric(srv, 'herald_disconnects_total', { reason: 'slow_consumer' }), 0);
  assert.strictEqual(await metric(srv, 'herald_sync_waiting'), 0, 'the sync is over');

  // 2. Live pushes to a device that reads nothing: cut as a slow consumer.
  const deaf = new h.TcpDevice(srv.devPort);
  t.after(() => deaf.destroy());
  assert.strictEqual((await deaf.hello(h.token('deaf'))).ret, 0);
  deaf.sock.pause();
  await h.sleep(300); // its (empty) connect-time sync is over
  const big = 'b'.repeat(60000);
  let sent = 0;
  while (!(await metric(srv, 'herald_slow_consumers_total')) && sent < 2000) {
    const rs = await Promise.all(Array.from({ length: 20 }, () =>
      h.push(srv, { deviceId: 'deaf', payload: big, ttl: 0 })));
    sent += rs.length;
  }
  t.diagnostic(`the deaf device was cut after ${sent} live pushes of 60 KB`);
  assert.strictEqual(await metric(srv, 'herald_slow_consumers_total'), 1);
  assert.match(srv.stderr(), /slow consumer disconnected.*device=deaf/);
  deaf.sock.resume();
  await deaf.waitClosed(5000);
  // The slow reader of part 1 is still connected.
  assert.ok(!d.closedAt);
});
