'use strict';
// The store under faults of its environment: a full disk.  The store runs
// on a small tmpfs this test mounts (root only: skipped with the reason
// otherwise), a file fills the rest of it, and herald must
//   - keep answering: /healthz at once, /readyz 503 "store: disk full",
//     pushes and status reads with a bounded answer (503), never a hang;
//   - not spin or flood its log while it waits for space;
//   - never deliver a push it answered with a failure, and deliver every
//     push it acknowledged, once space is back.
//
//   HERALD_BUILD=build NODE_PATH=$PWD/tests/js/node_modules \
//     node --test tests/integration/store_faults.test.js
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const h = require('./helpers');

// A tmpfs of `mb` MiB, unmounted when the test ends; null if mounting is
// not allowed here.
function tmpfs(t, mb) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mb}m,mode=0700`, 'tmpfs', dir],
      { stdio: 'ignore' });
  } catch (_) {
    fs.rmdirSync(dir);
    return null;
  }
  t.after(() => {
    try { execFileSync('umount', ['-l', dir], { stdio: 'ignore' }); } catch (_) {}
    try { fs.rmdirSync(dir); } catch (_) {}
  });
  return dir;
}

// Fills the filesystem of dir with one file until the kernel says no.
function fill(dir) {
  const f = path.join(dir, 'fill');
  const fd = fs.openSync(f, 'w');
  const big = Buffer.alloc(1 << 20), small = Buffer.alloc(4096);
  try { for (;;) fs.writeSync(fd, big); } catch (_) {}
  try { for (;;) fs.writeSync(fd, small); } catch (_) {}
  fs.closeSync(fd);
  return f;
}

// { status, body, ms } of a GET, or status 0 when it did not answer in ms.
async function timedGet(url, ms, headers = {}) {
  const t0 = Date.now();
  try {
    const r = await fetch(url, { headers, signal: AbortSignal.timeout(ms) });
    return { status: r.status, body: await r.text(), ms: Date.now() - t0 };
  } catch (_) {
    return { status: 0, body: '', ms: Date.now() - t0 };
  }
}

// CPU seconds (user + system) the process has used.
function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100; /* utime, stime: ticks */
}

async function until(cond, ms, what) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what} not met in ${ms} ms`);
    await h.sleep(50);
  }
}

test('a full disk: herald answers, does not spin, delivers exactly what it acknowledged', async (t) => {
  const dir = tmpfs(t, 24);
  if (!dir) { t.skip('mounting a tmpfs needs root here'); return; }
  const adminPort = await h.freePort();
  const srv = await h.startServe(t, ['--db', path.join(dir, 'herald.db'),
    '--admin-port', String(adminPort), '--log-level', 'info']);
  const admin = `http://127.0.0.1:${adminPort}`;
  const auth = { authorization: `Bearer ${h.KEY}` };

  // d1 is registered (it connected once) and offline: pushes are stored.
  const d = new h.TcpDevice(srv.devPort);
  await d.connected;
  await d.hello(h.token('d1'));
  d.destroy();
  await d.closed;

  const fillFile = fill(dir);
  const ok = new Map(), failed = new Set(); // payload -> msgId; payloads
  let next = 0;
  const statuses = new Map();
  const payload = (i) => `p${i}-` + 'x'.repeat(1000);
  // Push until at least 200 in a row have failed (the journal's free
  // room is used up) or 20,000 were tried.
  let failRun = 0;
  while (failRun < 200 && next < 20000) {
    const batch = [];
    for (let k = 0; k < 8; k++) {
      const i = next++;
      batch.push((async () => {
        const t0 = Date.now();
        let r;
        try {
          const res = await fetch(`${srv.api}/v1/push/device`, {
            method: 'POST', headers: { 'content-type': 'application/json', ...auth },
            body: JSON.stringify({ deviceId: 'd1', payload: payload(i), ttl: 600 }),
            signal: AbortSignal.timeout(5000),
          });
          r = { status: res.status, json: await res.json() };
        } catch (e) {
          r = { status: 0, json: {} };
        }
        statuses.set(r.status, (statuses.get(r.status) || 0) + 1);
        assert.ok(r.status !== 0, `push ${i} got no answer within 5 s (took ${Date.now() - t0} ms)`);
        if (r.status === 200) { ok.set(payload(i), r.json.msgId); failRun = 0; }
        else { failed.add(payload(i)); failRun++; }
      })());
    }
    await Promise.all(batch);
  }
  t.diagnostic(`pushes: ${JSON.stringify([...statuses])}`);
  assert.ok(failed.size >= 200, `the disk never filled: ${JSON.stringify([...statuses])}`);
  assert.ok(ok.size > 0, 'no push succeeded before the disk filled');
  for (const s of statuses.keys()) assert.ok(s === 200 || s === 503, `push answered ${s}`);

  // Readers and the admin port answer, bounded.
  const someId = ok.values().next().value;
  const st = await timedGet(`${srv.api}/v1/messages/${someId}`, 5000, auth);
  assert.ok(st.status === 200 || st.status === 503, `status read answered ${st.status} in ${st.ms} ms`);
  const ready = await timedGet(`${admin}/readyz`, 5000);
  assert.equal(ready.status, 503, `readyz: ${ready.status} ${ready.body}`);
  assert.match(ready.body, /store: disk full/);
  const health = await timedGet(`${admin}/healthz`, 2000);
  assert.equal(health.status, 200, `healthz after readyz: ${health.status} in ${health.ms} ms`);
  const metrics = await timedGet(`${admin}/metrics`, 2000);
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, /^herald_store_disk_full 1$/m);
  const again = await timedGet(`${srv.api}/v1/messages/${someId}`, 5000, auth);
  assert.ok(again.status === 200 || again.status === 503, `second status read: ${again.status}`);

  // Waiting for space costs next to nothing and writes a few lines.
  const c0 = cpuSeconds(srv.proc.pid);
  const log0 = srv.stderr().length;
  await h.sleep(2000);
  const cpu = cpuSeconds(srv.proc.pid) - c0;
  assert.ok(cpu < 0.5, `herald used ${cpu.toFixed(2)} s of CPU in 2 s on a full disk`);
  const lines = srv.stderr().slice(log0).split('\n').filter(Boolean).length;
  assert.ok(lines <= 10, `${lines} log lines in 2 s on a full disk`);

  // Space back: ready again, and d1 gets exactly the acknowledged pushes.
  fs.unlinkSync(fillFile);
  await until(async () => (await timedGet(`${admin}/readyz`, 2000)).status === 200, 15000,
    'readyz 200 after space came back');
  assert.match((await timedGet(`${admin}/metrics`, 2000)).body, /^herald_store_disk_full 0$/m);
  const got = new Map();
  const dev = new h.TcpDevice(srv.devPort);
  await dev.connected;
  await dev.hello(h.token('d1'));
  const drain = () => {
    for (const p of dev.pkgs.splice(0)) {
      if (p.cmd !== h.CMD.PUSH) continue;
      let last = 0;
      for (const m of h.dec('PushBatch', p.body).msgs) {
        got.set(m.payload.toString(), m.msgId);
        last = Math.max(last, Number(m.seq));
      }
      dev.send(h.CMD.ACK, 'AckReq', { inboxSeq: last }, 7);
    }
  };
  await until(async () => { drain(); return [...ok.keys()].every((p) => got.has(p)); }, 30000,
    () => `d1 receiving all ${ok.size} acknowledged pushes (has ${got.size})`);
  await h.sleep(1000);
  drain();
  const wrong = [...got.keys()].filter((p) => failed.has(p));
  assert.equal(wrong.length, 0, `${wrong.length} pushes answered with a failure were delivered`);
  for (const [p, id] of ok) assert.equal(got.get(p), id);
  dev.destroy();
});

// Offsets of the journal's records ("HREC" at 8-byte boundaries).
function recordOffsets(buf) {
  const at = [];
  for (let off = 16; off + 16 <= buf.length; off += 8) {
    if (buf.readUInt32LE(off) === 0x43455248) at.push(off);
  }
  return at;
}

test('a damaged journal: serve refuses to start, --accept-journal-loss recovers all but the damaged record', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-journal-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const db = path.join(dir, 'herald.db');
  const srv = await h.startServe(null, ['--db', db]);
  t.after(srv.stop);
  const d = new h.TcpDevice(srv.devPort);
  await d.connected;
  await d.hello(h.token('d1'));
  d.destroy();
  await d.closed;
  const ok = new Map();
  const N = 1500;
  for (let i = 0; i < N; i += 10) {
    await Promise.all(Array.from({ length: 10 }, async (_, k) => {
      const r = await h.push(srv, { deviceId: 'd1', payload: `j${i + k}`, ttl: 600 });
      assert.equal(r.status, 200);
      ok.set(`j${i + k}`, r.json.msgId);
    }));
  }
  srv.proc.kill('SIGKILL');
  await new Promise((r) => srv.proc.once('exit', r));

  const hot0 = `${db}-hot0`;
  const buf = fs.readFileSync(hot0);
  const recs = recordOffsets(buf);
  assert.ok(recs.length >= N / 2, `only ${recs.length} records in the journal`);
  const victim = recs[Math.floor(recs.length * 3 / 4)];
  buf[victim + 24] ^= 0x40; // inside the record's body
  fs.writeFileSync(hot0, buf);

  await assert.rejects(h.startServe(null, ['--db', db]), (e) => {
    assert.match(e.message, /serve exited [1-9]/);
    assert.match(e.message, /hot journal damaged/);
    assert.match(e.message, /lost=1 /);
    assert.match(e.message, /--accept-journal-loss/);
    return true;
  });

  const back = await h.startServe(t, ['--db', db, '--accept-journal-loss']);
  const got = new Map();
  const dev = new h.TcpDevice(back.devPort);
  await dev.connected;
  await dev.hello(h.token('d1'));
  await until(async () => {
    for (const p of dev.pkgs.splice(0)) {
      if (p.cmd !== h.CMD.PUSH) continue;
      let last = 0;
      for (const m of h.dec('PushBatch', p.body).msgs) {
        got.set(m.payload.toString(), m.msgId);
        last = Math.max(last, Number(m.seq));
      }
      dev.send(h.CMD.ACK, 'AckReq', { inboxSeq: last }, 7);
    }
    return got.size >= N - 1;
  }, 20000, () => `d1 receiving ${N - 1} of ${N} (has ${got.size})`);
  await h.sleep(300);
  const lost = [...ok.keys()].filter((p) => !got.has(p));
  assert.ok(lost.length <= 1, `${lost.length} acknowledged pushes lost: ${lost.slice(0, 5)}`);
  dev.destroy();
});
