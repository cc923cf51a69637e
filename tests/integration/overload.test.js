'use strict';
// Overload protection of a real `herald serve` (issue 5, docs/operations.md
// "Overload"): floods beyond the configured limits are refused with the
// documented codes, the rest is served, resident memory stays under the
// watermark, and the server recovers when the flood stops.
//
//   1. connection flood: from 127.0.0.1 past --max-conns-per-ip (Kick
//      ERR_TOO_MANY_CONNS 1020), from 127.0.0.2..20 in one burst past
//      --accept-rate and then paced past --max-conns (Kick ERR_OVERLOADED
//      1019); admitted ones get their hello answered.  A device connected
//      beforehand gets every push sent to it meanwhile.
//   2. API flood past --rate-app: 429 rate_limited with Retry-After, the
//      allowed ones 200.
//   3. memory watermark: connections that each park a 60 KB partial frame
//      push RSS over --memory-high; then new connections get ERR_OVERLOADED,
//      pushes 503 overloaded, /readyz 503, while the old device is still
//      served; closing the flood brings RSS back and everything recovers.
//
// RSS is read from /proc/PID/status (VmRSS) every 20 ms during the floods.
// Watermarks are set from the RSS a probe server starts with: floods 1-2
// run under start + 48 MiB and must stay below it; flood 3 under start +
// 8 MiB and may pass it by at most 4 MiB (the stated slack: what arrives
// between two 100 ms samples, about 0.6 MB at this pace, and then some).
const test = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const h = require('./helpers');

const MiB = 1024 * 1024;
const ERR_OVERLOADED = 1019;
const ERR_TOO_MANY_CONNS = 1020;
const FLOOD_APP = 'flood:FSECRET:FKEY';
const SOURCES = Array.from({ length: 19 }, (_, i) => `127.0.0.${i + 2}`);

// A device token of app "test" (docs/protocol.md §1), minted here: a
// `herald token` process per flood connection would be the slow part.
function mint(device) {
  const signed = `test.${device}.${Math.floor(Date.now() / 1000) + 600}`;
  return `${signed}.${crypto.createHmac('sha256', h.SECRET).update(signed).digest('base64url')}`;
}


async function startWithAdmin(t, extra) {
  const port = await h.freePort();
  const srv = await h.startServe(t, ['--workers', '2', '--admin-port', String(port), ...extra]);
  srv.admin = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${srv.admin}/healthz`)).status === 200) return srv;
    } catch (_) { /* not up yet */ }
    await h.sleep(50);
  }
  throw new Error(`admin did not answer: ${srv.stderr()}`);
}

function rssOf(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}

// Highest RSS seen while it runs.
function watchRss(pid) {
  const w = { max: rssOf(pid) };
  const timer = setInterval(() => {
    try { w.max = Math.max(w.max, rssOf(pid)); } catch (_) { /* exited */ }
  }, 20);
  w.stop = () => clearInterval(timer);
  return w;
}

// Sum of the samples of a family whose labels include `labels`.
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

async function waitUntil(what, fn, ms = 8000) {
  for (const end = Date.now() + ms; Date.now() < end; await h.sleep(50)) {
    if (await fn()) return;
  }
  assert.fail(`timed out waiting for ${what}`);
}

// One connection attempt: preface + hello.  Resolves with the device (kept
// open when admitted) and what the server said: ok, a kick, a hello error,
// or a silent close.
async function attempt(srv, src, dev) {
  const d = new h.TcpDevice(srv.devPort, { localAddress: src });
  d.write(h.preface());
  d.send(h.CMD.HELLO, 'HelloReq', { token: mint(dev), heartbeat: 60 }, 1);
  try {
    const p = await d.waitFor((q) => q.cmd === h.CMD.HELLO || q.cmd === h.CMD.KICK, 8000);
    if (p.cmd === h.CMD.KICK) {
      const k = h.dec('Kick', p.body);
      return { d, kind: 'kick', code: k.reason, retryAfter: k.retryAfter };
    }
    return { d, kind: p.ret === 0 ? 'ok' : 'error', code: p.ret };
  } catch (e) {
    return { d, kind: e.message === 'closed' ? 'closed' : 'timeout' };
  }
}

function tally(results) {
  const t = {};
  for (const r of results) {
    const k = r.kind === 'kick' ? `kick${r.code}/${r.retryAfter}` : r.kind;
    t[k] = (t[k] || 0) + 1;
  }
  return t;
}

// Pushes to `device` every 100 ms until stopped; the device must receive
// every one that was answered 200 "written".
function keepPushing(srv, device) {
  const sent = [];
  const bad = [];
  let on = true;
  const done = (async () => {
    for (let i = 0; on; i++) {
      const r = await h.push(srv, { deviceId: 'keeper', payload: `k${i}`, needAck: false });
      if (r.status === 200 && r.json.state === 'written') sent.push(r.json.msgId);
      else bad.push(r);
      await h.sleep(100);
    }
  })();
  const received = new Set();
  device.sock.on('data', () => {
    for (let i = device.pkgs.length - 1; i >= 0; i--) {
      if (device.pkgs[i].cmd !== h.CMD.PUSH) continue;
      for (const m of h.dec('PushBatch', device.pkgs[i].body).msgs) received.add(m.msgId);
      device.pkgs.splice(i, 1);
    }
  });
  return {
    async stop() {
      on = false;
      await done;
      await waitUntil('the keeper to get every push', () => sent.every((id) => received.has(id)), 3000);
      return { sent: sent.length, bad };
    },
  };
}

// A probe server with the same settings tells the resident size herald
// starts with; the watermarks below are set from it.
async function baselineRss() {
  const srv = await h.startServe(null, ['--workers', '2']);
  try {
    await h.sleep(300);
    return rssOf(srv.proc.pid);
  } finally {
    await srv.stop();
  }
}

test('connection and API floods are refused with codes; the rest is served', async (t) => {
  const base = await baselineRss();
  const high = base + 48 * MiB;
  const srv = await startWithAdmin(t, ['--max-conns', '300', '--max-conns-per-ip', '100',
    '--accept-rate', '200', '--accept-burst', '50', '--rate-app', '50', '--burst', '20',
    '--memory-high', String(high), '--app', FLOOD_APP]);
  const rss = watchRss(srv.proc.pid);
  const open = [];
  t.after(() => { rss.stop(); for (const d of open) d.destroy(); });

  const keeper = new h.TcpDevice(srv.devPort);
  open.push(keeper);
  assert.equal((await keeper.hello(h.token('keeper'))).ret, 0);
  const pusher = keepPushing(srv, keeper);

  // 1a. per address: 120 from 127.0.0.1 (the keeper holds one of its 100),
  // paced below the accept rate so only the address limit refuses.
  const p1 = [];
  for (let b = 0; b < 6; b++) {
    p1.push(...await Promise.all(Array.from({ length: 20 }, (_, i) =>
      attempt(srv, '127.0.0.1', `ip-${b}-${i}`))));
    await h.sleep(250);
  }
  open.push(...p1.map((r) => r.d));
  t.diagnostic(`per address: ${JSON.stringify(tally(p1))}`);
  assert.deepEqual(tally(p1), { ok: 99, [`kick${ERR_TOO_MANY_CONNS}/5`]: 21 });

  // 1b. a burst from 19 other addresses: the accept rate refuses the excess.
  const p2 = await Promise.all(Array.from({ length: 500 }, (_, i) =>
    attempt(srv, SOURCES[i % SOURCES.length], `burst-${i}`)));
  open.push(...p2.map((r) => r.d));
  const t2 = tally(p2);
  t.diagnostic(`burst: ${JSON.stringify(t2)}`);
  const ok2 = t2.ok || 0;
  const refused2 = (t2[`kick${ERR_OVERLOADED}/1`] || 0) + (t2[`kick${ERR_OVERLOADED}/5`] || 0);
  assert.equal(ok2 + refused2, 500, `every attempt answered: ${JSON.stringify(t2)}`);
  assert.ok(ok2 >= 50 && ok2 <= 200, `burst then rate admitted: ${JSON.stringify(t2)}`);
  assert.ok((t2[`kick${ERR_OVERLOADED}/1`] || 0) > 0, 'accept rate refused some');
  assert.ok(await metric(srv, 'herald_refused_total', { what: 'connection', reason: 'accept_rate' }) > 0);

  // 1c. paced (under the rate) until past the cap: exactly --max-conns
  // admitted.  The burst emptied the bucket: let it fill up first.
  await h.sleep(300);
  const room = 300 - 100 - ok2;
  const p3 = [];
  for (let i = 0; i < room + 40; i += 10) {
    p3.push(...await Promise.all(Array.from({ length: Math.min(10, room + 40 - i) }, (_, j) =>
      attempt(srv, SOURCES[(i + j) % SOURCES.length], `cap-${i + j}`))));
    await h.sleep(100);
  }
  open.push(...p3.map((r) => r.d));
  const t3 = tally(p3);
  t.diagnostic(`paced to the cap (room ${room}): ${JSON.stringify(t3)}`);
  assert.equal(t3.ok || 0, room, `admitted up to the cap: ${JSON.stringify(t3)}`);
  assert.equal(t3[`kick${ERR_OVERLOADED}/5`], 40, `the rest refused: ${JSON.stringify(t3)}`);
  assert.equal(await metric(srv, 'herald_gateway_sockets'), 300);
  assert.equal(await metric(srv, 'herald_refused_total', { what: 'connection', reason: 'per_ip' }), 21);
  assert.ok(await metric(srv, 'herald_refused_total', { what: 'connection', reason: 'max_conns' }) >= 40);
  assert.equal(await metric(srv, 'herald_refused_unanswered_total'), 0);

  // 2. API flood from another app: the bucket (20, +50/s) lets some through.
  const api = await Promise.all(Array.from({ length: 200 }, async (_, i) => {
    const res = await fetch(`${srv.api}/v1/push/device`, {
      method: 'POST',
      headers: { authorization: 'Bearer FKEY', 'content-type': 'application/json' },
      body: JSON.stringify({ deviceId: `nobody-${i}`, payload: 'x', ttl: 0 }),
    });
    return { status: res.status, retry: res.headers.get('retry-after'), json: await res.json() };
  }));
  const ok = api.filter((r) => r.status === 200);
  const limited = api.filter((r) => r.status === 429);
  t.diagnostic(`api flood: ${ok.length} ok, ${limited.length} rate limited`);
  assert.equal(ok.length + limited.length, 200, 'only 200 and 429');
  assert.ok(ok.length >= 20, `${ok.length} allowed: at least the burst`);
  assert.ok(ok.every((r) => r.json.state === 'dropped' && r.json.msgId));
  assert.ok(limited.length >= 50, `${limited.length} rate limited`);
  assert.ok(limited.every((r) => r.retry === '1' && r.json.error.code === 'rate_limited'));
  assert.equal(await metric(srv, 'herald_refused_total', { what: 'push', reason: 'rate_limit' }), limited.length);

  // The keeper was served throughout; memory stayed under the watermark.
  const kept = await pusher.stop();
  t.diagnostic(`keeper: ${kept.sent} pushes; rss max ${rss.max} (start ${base}, high ${high})`);
  assert.deepEqual(kept.bad, [], 'every push to the keeper written');
  assert.ok(kept.sent >= 20, `${kept.sent} pushes to the keeper`);
  assert.ok(rss.max < high, `rss ${rss.max} under ${high}`);
  assert.equal(await metric(srv, 'herald_overloaded'), 0);

  // Recovery: the flood goes, new devices and pushes are welcome again.
  for (const d of open.splice(1)) d.destroy();
  await waitUntil('the flood to be closed', async () => await metric(srv, 'herald_gateway_sockets') === 1);
  const again = await attempt(srv, '127.0.0.1', 'after-flood');
  open.push(again.d);
  assert.equal(again.kind, 'ok');
  const back = await h.push(srv, { deviceId: 'after-flood', payload: 'back' });
  assert.equal(back.status, 200);
  assert.equal(back.json.state, 'written');
  const got = await again.d.waitFor((p) => p.cmd === h.CMD.PUSH);
  assert.equal(h.dec('PushBatch', got.body).msgs[0].msgId, back.json.msgId);
  await h.sleep(500); // the flood app's bucket refills
  const fr = await h.push(srv, { deviceId: 'nobody', payload: 'x', ttl: 0 }, { key: 'FKEY' });
  assert.equal(fr.status, 200);
});

// Each connection parks a partial 64 KiB frame (preface, a length of 65536
// and 60000 bytes of it): the server keeps the tail, ~60 KB per connection.
function parkFrame(srv, src) {
  const s = net.connect({ port: srv.devPort, host: '127.0.0.1', localAddress: src });
  const c = { s, kick: null };
  s.on('error', () => {});
  let buf = Buffer.alloc(0);
  s.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    if (buf.length >= 4 && buf.length >= buf.readUInt32BE(0)) {
      const p = h.dec('Package', buf.subarray(4, buf.readUInt32BE(0)));
      if (p.cmd === h.CMD.KICK) c.kick = h.dec('Kick', p.body);
    }
  });
  const len = Buffer.alloc(4);
  len.writeUInt32BE(65536);
  s.write(Buffer.concat([h.preface(), len, Buffer.alloc(60000, 0x41)]));
  return c;
}

test('memory watermark: new work refused with codes, old served, recovery', async (t) => {
  const base = await baselineRss();
  const high = base + 8 * MiB;
  const SLACK = 4 * MiB; // what arrives between two 100 ms samples, and then some
  const srv = await startWithAdmin(t, ['--memory-high', String(high)]);
  const rss = watchRss(srv.proc.pid);
  const flood = [];
  const open = [];
  t.after(() => { rss.stop(); for (const c of flood) c.s.destroy(); for (const d of open) d.destroy(); });

  const keeper = new h.TcpDevice(srv.devPort);
  open.push(keeper);
  assert.equal((await keeper.hello(h.token('keeper'))).ret, 0);
  assert.equal((await h.push(srv, { deviceId: 'keeper', payload: 'before' })).json.state, 'written');

  // ~6 MB/s of parked frames until the server refuses (or 600 tries).
  let refused = () => flood.filter((c) => c.kick).length;
  for (let i = 0; i < 600 && refused() < 10; i += 5) {
    for (let j = 0; j < 5; j++) flood.push(parkFrame(srv, SOURCES[(i + j) % SOURCES.length]));
    await h.sleep(50);
  }
  await h.sleep(200);
  t.diagnostic(`parked ${flood.length}, refused ${refused()}, rss max ${rss.max} (start ${base}, high ${high})`);
  assert.ok(refused() >= 10, `refused ${refused()} of ${flood.length}, rss max ${rss.max}, high ${high}`);
  assert.ok(flood.filter((c) => c.kick).every((c) => c.kick.reason === ERR_OVERLOADED && c.kick.retryAfter === 5));
  assert.equal(await metric(srv, 'herald_overloaded'), 1);
  assert.equal(await metric(srv, 'herald_memory_high_bytes'), high);

  // While over: a new device is refused, a push is refused, /readyz says so...
  const late = await attempt(srv, '127.0.0.1', 'late');
  open.push(late.d);
  assert.deepEqual([late.kind, late.code], ['kick', ERR_OVERLOADED]);
  const res = await fetch(`${srv.api}/v1/push/device`, {
    method: 'POST',
    headers: { authorization: `Bearer ${h.KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ deviceId: 'keeper', payload: 'during' }),
  });
  assert.equal(res.status, 503);
  assert.equal(res.headers.get('retry-after'), '1');
  assert.equal((await res.json()).error.code, 'overloaded');
  const ready = await fetch(`${srv.admin}/readyz`);
  assert.equal(ready.status, 503);
  const rj = await ready.json();
  assert.equal(rj.reason, 'overloaded');
  assert.ok(await metric(srv, 'herald_refused_total', { what: 'connection', reason: 'memory' }) >= 11);
  assert.equal(await metric(srv, 'herald_refused_total', { what: 'push', reason: 'memory' }), 1);
  // ...and the device connected before is still served.
  keeper.send(h.CMD.HEARTBEAT, 'HeartbeatReq', { interval: 60 }, 5);
  assert.equal((await keeper.waitFor((p) => p.cmd === h.CMD.HEARTBEAT && p.reqId === 5)).ret, 0);
  rss.stop();
  assert.ok(rss.max < high + SLACK, `rss max ${rss.max} within ${high} + ${SLACK}`);

  // The flood stops: memory goes back, the flag clears, work is welcome.
  for (const c of flood.splice(0)) c.s.destroy();
  await waitUntil('the watermark to clear', async () => await metric(srv, 'herald_overloaded') === 0);
  assert.equal((await fetch(`${srv.admin}/readyz`)).status, 200);
  const after = await attempt(srv, '127.0.0.1', 'after');
  open.push(after.d);
  assert.equal(after.kind, 'ok');
  const back = await h.push(srv, { deviceId: 'keeper', payload: 'after' });
  assert.equal(back.status, 200);
  assert.equal(back.json.state, 'written');
  const got = await keeper.waitFor((p) => p.cmd === h.CMD.PUSH &&
    h.dec('PushBatch', p.body).msgs[0].msgId === back.json.msgId);
  assert.ok(got);
});
