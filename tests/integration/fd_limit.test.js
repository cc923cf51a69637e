'use strict';
// Running out of file descriptors (issue 12): a real `herald serve` under a
// descriptor limit of 256 (`ulimit -n` in the shell that execs it).
//
//   1. With the default `max-conns 0` the device cap is derived from the
//      limit, so 400 device connections cannot take the descriptors the
//      push API, the admin port and the store need: the excess is refused,
//      /healthz and a push answer, and the server idles (its CPU time over
//      a second, from /proc/PID/stat).
//   2. With an explicit cap above the limit the descriptors do run out:
//      the device listener pauses instead of spinning (CPU idle), says so
//      in one rate-limited log line and in herald_listener_paused_total,
//      and everything answers again once the devices go.
//
// Before the fix, both floods kept herald at 100-200 % CPU with /healthz
// and pushes timing out and nothing in the log.
const test = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const h = require('./helpers');

const NOFILE = 256;
const FLOOD = 400;
const ERR_OVERLOADED = 1019;

function mint(device) {
  const signed = `test.${device}.${Math.floor(Date.now() / 1000) + 600}`;
  return `${signed}.${crypto.createHmac('sha256', h.SECRET).update(signed).digest('base64url')}`;
}

// utime + stime of pid, in seconds.
function cpuOf(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function cpuOverOneSecond(pid) {
  const c0 = cpuOf(pid);
  await h.sleep(1000);
  return cpuOf(pid) - c0;
}

async function start(t, extra) {
  const port = await h.freePort();
  const srv = await h.startServe(t, ['--workers', '2', '--admin-port', String(port), ...extra],
    { nofile: NOFILE });
  srv.admin = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${srv.admin}/healthz`)).status === 200) return srv;
    } catch (_) { /* not up yet */ }
    await h.sleep(50);
  }
  throw new Error(`admin did not answer: ${srv.stderr()}`);
}

async function metric(srv, name, labels = {}) {
  const text = await (await fetch(`${srv.admin}/metrics`, { signal: AbortSignal.timeout(3000) })).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] || '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

async function healthz(srv) {
  const r = await fetch(`${srv.admin}/healthz`, { signal: AbortSignal.timeout(2000) });
  return r.status;
}

async function pushTo(srv, device, payload) {
  const r = await fetch(`${srv.api}/v1/push/device`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${h.KEY}` },
    body: JSON.stringify({ deviceId: device, payload }),
    signal: AbortSignal.timeout(3000),
  });
  return { status: r.status, json: await r.json() };
}

// Connects and says hello; resolves with what the server answered: 'ok',
// a kick code, or 'closed'/'timeout'.
async function attempt(srv, dev) {
  const d = new h.TcpDevice(srv.devPort);
  d.write(h.preface());
  d.send(h.CMD.HELLO, 'HelloReq', { token: mint(dev), heartbeat: 60 }, 1);
  try {
    const p = await d.waitFor((q) => q.cmd === h.CMD.HELLO || q.cmd === h.CMD.KICK, 8000);
    if (p.cmd === h.CMD.KICK) return { d, kind: `kick${h.dec('Kick', p.body).reason}` };
    return { d, kind: p.ret === 0 ? 'ok' : `error${p.ret}` };
  } catch (e) {
    return { d, kind: e.message };
  }
}

test('max-conns 0 derives the device cap from the descriptor limit', { timeout: 60000 }, async (t) => {
  const srv = await start(t, []);
  const m = /device connections at most (\d+) \(max-conns 0: descriptor limit (\d+)/.exec(srv.stdout());
  assert.ok(m, `no derived cap in: ${srv.stdout()}`);
  const cap = Number(m[1]);
  assert.strictEqual(Number(m[2]), NOFILE);
  assert.ok(cap > 0 && cap <= NOFILE / 2, `cap ${cap}`);

  const results = [];
  t.after(() => { for (const r of results) r.d.destroy(); });
  // In waves of 50, so every attempt is answered within its wait.
  for (let i = 0; i < FLOOD; i += 50) {
    results.push(...await Promise.all(
      Array.from({ length: 50 }, (_, k) => attempt(srv, `fd${i + k}`))));
  }
  const tally = {};
  for (const r of results) tally[r.kind] = (tally[r.kind] || 0) + 1;
  t.diagnostic(`cap ${cap}, outcomes ${JSON.stringify(tally)}`);
  assert.ok((tally.ok || 0) <= cap, `admitted ${tally.ok} over the cap ${cap}`);
  assert.ok((tally.ok || 0) >= cap - 8, `admitted only ${tally.ok} of ${cap}`);
  assert.ok((tally[`kick${ERR_OVERLOADED}`] || 0) + (tally.closed || 0) >= FLOOD - cap,
    `refusals ${JSON.stringify(tally)}`);

  // The flood holds its connections; the server is idle and answers.
  const cpu = await cpuOverOneSecond(srv.proc.pid);
  t.diagnostic(`server CPU over 1 s with ${FLOOD} connections held: ${cpu.toFixed(2)} s`);
  assert.ok(cpu < 0.3, `server busy: ${cpu} s of CPU in 1 s`);
  assert.strictEqual(await healthz(srv), 200);
  const i = results.findIndex((r) => r.kind === 'ok');
  const p = await pushTo(srv, `fd${i}`, 'still here');
  assert.strictEqual(p.status, 200, JSON.stringify(p.json));
  assert.strictEqual(p.json.state, 'written');
  const got = await results[i].d.waitFor((q) => q.cmd === h.CMD.PUSH);
  assert.strictEqual(h.dec('PushBatch', got.body).msgs[0].msgId, p.json.msgId);
  assert.ok(await metric(srv, 'herald_refused_total', { what: 'connection', reason: 'max_conns' }) >= FLOOD - cap);
  assert.strictEqual(await metric(srv, 'herald_listener_paused_total'), 0);
});

test('out of descriptors, the device listener pauses instead of spinning', { timeout: 60000 }, async (t) => {
  const srv = await start(t, ['--max-conns', '100000']);
  assert.match(srv.stderr(), /max-conns is above what the descriptor limit allows/);
  const socks = [];
  t.after(() => { for (const s of socks) s.destroy(); });
  for (let i = 0; i < FLOOD; i++) {
    const s = net.connect({ port: srv.devPort, host: '127.0.0.1' });
    s.on('error', () => {});
    socks.push(s);
  }
  await h.sleep(1500); // the descriptors are gone; the rest wait in the backlog
  const cpu = await cpuOverOneSecond(srv.proc.pid);
  t.diagnostic(`server CPU over 1 s, out of descriptors: ${cpu.toFixed(2)} s`);
  assert.ok(cpu < 0.3, `server spinning: ${cpu} s of CPU in 1 s`);
  const lines = srv.stderr().split('\n').filter((l) => l.includes('accept failed, listener paused'));
  assert.strictEqual(lines.length, 1, srv.stderr());
  assert.match(lines[0], /listener=device/);
  assert.match(lines[0], /nofile=256/);

  for (const s of socks) s.destroy();
  socks.length = 0;
  // Within a back-off (at most 1 s) of the descriptors coming back, every
  // listener accepts again.
  let status = 0;
  for (let i = 0; i < 40 && status !== 200; i++) {
    try { status = await healthz(srv); } catch (_) { await h.sleep(100); }
  }
  assert.strictEqual(status, 200);
  assert.ok(await metric(srv, 'herald_listener_paused_total', { listener: 'device' }) >= 1);
  const p = await pushTo(srv, 'after', 'x');
  assert.strictEqual(p.status, 200, JSON.stringify(p.json));
});
