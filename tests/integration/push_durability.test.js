'use strict';
// Durability: while N durable single-device pushes stream in over several
// keep-alive HTTP connections to a mix of online and offline devices, the
// server is killed with SIGKILL three times and restarted on the same db and
// ports.  Online devices are long-running `herald listen --json` processes
// and npm `ws` clients that reconnect; offline devices connect only at the
// end.  Every push that got a success reply must reach its device, none
// another device, and after dedup by msgId each exactly once.
//
// A push whose reply was lost in a kill is retried with the same requestId,
// as a client would, so idempotency across crashes is exercised too.
//
//   HERALD_DURABILITY_N=20000 (default) sets the number of pushes.
//   HERALD_BUILD=build NODE_PATH=$PWD/tests/js/node_modules \
//     node --test tests/integration/push_durability.test.js
const test = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const http = require('node:http');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const WebSocket = require('ws');
const h = require('./helpers');

const N = Number(process.env.HERALD_DURABILITY_N || 20000);
const KILLS = 3;
const CONNS = 16;            // keep-alive HTTP connections pushing at once
const LISTENERS = 8;         // online: herald listen (raw TCP)
const WS_ONLINE = 8;         // online: ws clients that reconnect
const OFFLINE = 16;          // connect only after the last push

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

// what: a string, or a function giving one when the time is up (so the
// message shows the state at the end, not at the start).
async function until(cond, ms, what) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) {
      throw new Error(`${typeof what === 'function' ? what() : what} not met in time`);
    }
    await sleep(50);
  }
}

// `herald serve` on fixed ports (so devices reconnect to the same place).
async function serve(db, devPort, apiPort) {
  const proc = spawn(h.HERALD, ['serve', '--host', '127.0.0.1', '--port', String(devPort),
    '--api-port', String(apiPort), '--tars-port', '-1', '--db', db,
    '--app', `test:${h.SECRET}:${h.KEY}`, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  h.live.add(proc);
  proc.on('exit', () => h.live.delete(proc));
  let out = '', err = '';
  proc.stderr.on('data', (d) => { err += d; });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 15000);
    proc.once('exit', (c) => { clearTimeout(timer); reject(new Error(`serve exited ${c}: ${err}`)); });
    proc.stdout.on('data', (d) => {
      out += d;
      if (/push API http:/.test(out)) { clearTimeout(timer); resolve(); }
    });
  });
  return proc;
}

function kill(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode) return resolve();
    proc.once('exit', resolve);
    proc.kill('SIGKILL');
  });
}

// Collects what one device receives: msgId -> count, plus every payload.
function sink(id) {
  return { id, seen: new Map(), payloads: [] };
}
function record(s, msgId, payload) {
  s.seen.set(msgId, (s.seen.get(msgId) || 0) + 1);
  s.payloads.push({ msgId, payload });
}

// A ws device that acks and reconnects until stopped.
function wsDevice(s, devPort) {
  let stopped = false, ws = null;
  const connect = () => {
    if (stopped) return;
    ws = new WebSocket(`ws://127.0.0.1:${devPort}/v1/ws?token=${h.token(s.id)}`);
    ws.on('message', (data, bin) => {
      if (bin) return;
      const m = JSON.parse(data);
      if (m.cmd !== 'push') return;
      record(s, m.msgId, m.payload);
      if (m.needAck) ws.send(JSON.stringify({ cmd: 'ack', ...((m.timeline || 0) === 0 ? { inboxSeq: m.seq } : { broadcastSeq: m.seq }) }));
    });
    ws.on('error', () => {});
    ws.on('close', () => { if (!stopped) setTimeout(connect, 100); });
  };
  connect();
  return { stop: () => { stopped = true; if (ws) ws.terminate(); } };
}

// A `herald listen --json` process; it reconnects by itself.
function listenDevice(s, devPort) {
  const p = spawn(h.HERALD, ['listen', '--server', `127.0.0.1:${devPort}`, '--app', 'test',
    '--secret', h.SECRET, '--device', s.id, '--json'], { stdio: ['ignore', 'pipe', 'ignore'] });
  h.live.add(p);
  let buf = '';
  p.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line) { const m = JSON.parse(line); record(s, m.msgId, m.payload); }
    }
  });
  const exited = new Promise((r) => p.on('exit', () => { h.live.delete(p); r(); }));
  return { stop: async () => { if (p.exitCode === null && !p.signalCode) { p.kill('SIGTERM'); await exited; } } };
}

// One POST on the keep-alive agent; resolves {status, json} or rejects on a
// transport error (the server was killed).
function post(agent, apiPort, body) {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(JSON.stringify(body));
    const req = http.request({
      host: '127.0.0.1', port: apiPort, method: 'POST', path: '/v1/push/device', agent,
      headers: { 'content-type': 'application/json', 'content-length': data.length, authorization: `Bearer ${h.KEY}` },
    }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { b += c; });
      res.on('end', () => { try { resolve({ status: res.statusCode, json: JSON.parse(b) }); } catch (e) { reject(e); } });
      res.on('error', reject);
    });
    req.setTimeout(10000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(data);
  });
}

test(`durability: ${N} pushes, ${KILLS} SIGKILLs, every acknowledged push delivered once`, { timeout: 300000 }, async (t) => {
  const t0 = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-dur-'));
  const db = path.join(dir, 'herald.db');
  const devPort = await h.freePort();
  const apiPort = await h.freePort();
  let srv = await serve(db, devPort, apiPort);
  const stoppers = [];
  t.after(async () => {
    for (const s of stoppers) await s();
    await kill(srv);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const tag = `${process.pid}`;
  const online = [], offline = [];
  for (let i = 0; i < LISTENERS; i++) {
    const s = sink(`dl-${tag}-${i}`);
    online.push(s);
    stoppers.push(listenDevice(s, devPort).stop);
  }
  for (let i = 0; i < WS_ONLINE; i++) {
    const s = sink(`dw-${tag}-${i}`);
    online.push(s);
    const d = wsDevice(s, devPort);
    stoppers.push(async () => d.stop());
  }
  for (let i = 0; i < OFFLINE; i++) offline.push(sink(`do-${tag}-${i}`));
  const all = [...online, ...offline];
  // Online devices are online before the first push (they still drop out
  // at every kill and come back).
  await until(async () => {
    for (const s of online) {
      const r = await fetch(`http://127.0.0.1:${apiPort}/v1/devices/${s.id}`, { headers: { authorization: `Bearer ${h.KEY}` } });
      if (!(await r.json()).online) return false;
    }
    return true;
  }, 10000, 'online devices connected');

  // ---- push, with kills in between ----
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNS });
  const acked = new Map();     // msgId -> device id (success replies)
  const byIndex = new Array(N);
  let next = 0, done = 0, retries = 0, dupReplies = 0, down = false, kills = 0;
  const states = {};

  async function worker() {
    for (;;) {
      const i = next++;
      if (i >= N) return;
      const target = all[i % all.length];
      const body = { deviceId: target.id, payload: `${target.id}|${i}`, requestId: `dur-${tag}-${i}`, ttl: 3600 };
      for (;;) {
        let r = null;
        if (!down) {
          try { r = await post(agent, apiPort, body); } catch (_) { r = null; }
        }
        if (r && r.status === 200) {
          if (r.json.duplicate) dupReplies++;
          states[r.json.state] = (states[r.json.state] || 0) + 1;
          assert.match(r.json.msgId, /^[0-9a-f]{24}$/);
          assert.ok(['written', 'stored', 'duplicate'].includes(r.json.state), JSON.stringify(r.json));
          if (byIndex[i] !== undefined) assert.equal(r.json.msgId, byIndex[i], 'a retry got another msgId');
          byIndex[i] = r.json.msgId;
          assert.ok(!acked.has(r.json.msgId) || acked.get(r.json.msgId) === target.id, 'one msgId for two devices');
          acked.set(r.json.msgId, target.id);
          done++;
          break;
        }
        // 5xx/503 or a dead connection: the server is (being) killed; retry.
        if (r) assert.ok(r.status >= 500, `push ${i}: ${r.status} ${JSON.stringify(r.json)}`);
        retries++;
        await sleep(r ? 20 : 50);
      }
    }
  }

  async function killer() {
    for (let k = 1; k <= KILLS; k++) {
      const at = Math.floor((N * k) / (KILLS + 1));
      while (done < at) await sleep(5);
      down = true;
      await kill(srv);
      kills++;
      // Let the clients see the dead server (refused connections, retries).
      await sleep(200);
      srv = await serve(db, devPort, apiPort);
      down = false;
    }
  }

  const workers = [];
  for (let c = 0; c < CONNS; c++) workers.push(worker());
  await Promise.all([...workers, killer()]);
  agent.destroy();
  const pushSecs = (Date.now() - t0) / 1000;

  // ---- offline devices connect; wait for every acknowledged push ----
  offline.forEach((s, i) => {
    if (i % 2) stoppers.push(listenDevice(s, devPort).stop);
    else { const d = wsDevice(s, devPort); stoppers.push(async () => d.stop()); }
  });
  const missing = () => {
    let n = 0;
    for (const s of all) for (const id of s.expected) if (!s.seen.has(id)) n++;
    return n;
  };
  for (const s of all) s.expected = [];
  const owner = new Map(all.map((s) => [s.id, s]));
  for (const [msgId, dev] of acked) owner.get(dev).expected.push(msgId);
  const missingReport = () => {
    const lost = [];
    for (const s of all) {
      const ids = s.expected.filter((id) => !s.seen.has(id));
      if (ids.length) lost.push(`${s.id}: ${ids.length} (first ${ids[0]}, seen ${s.seen.size})`);
    }
    return `all acknowledged pushes delivered (missing ${missing()}; ${lost.join('; ')})`;
  };
  await until(() => missing() === 0, 120000, missingReport);
  // A moment for stray duplicates or misdeliveries to show up.
  await sleep(500);

  // ---- the checks ----
  assert.equal(done, N);
  assert.equal(kills, KILLS);
  assert.ok(states.written > 0 && states.stored > 0, `a mix of online and offline targets: ${JSON.stringify(states)}`);
  assert.equal(acked.size, N, 'every push has its own msgId');
  const where = new Map();
  let dupDeliveries = 0;
  for (const s of all) {
    for (const { msgId, payload } of s.payloads) {
      assert.equal(payload.split('|')[0], s.id, `${s.id} got a message for another device`);
      if (acked.has(msgId)) assert.equal(acked.get(msgId), s.id, `${msgId} delivered to the wrong device`);
      assert.ok(!where.has(msgId) || where.get(msgId) === s.id, `${msgId} reached two devices`);
      where.set(msgId, s.id);
    }
    for (const c of s.seen.values()) if (c > 1) dupDeliveries += c - 1;
    // After dedup by msgId each expected message is there exactly once.
    const distinct = new Set(s.payloads.map((p) => p.msgId));
    for (const id of s.expected) assert.ok(distinct.has(id));
  }
  // Deliveries of pushes that never got a reply would be extra msgIds;
  // with retries under one requestId there must be none.
  for (const id of where.keys()) assert.ok(acked.has(id), `${id} delivered but never acknowledged to the pusher`);
  t.diagnostic(`pushes ${N} in ${pushSecs.toFixed(1)} s, retries ${retries}, duplicate replies ${dupReplies}, ` +
    `redelivered duplicates (deduped) ${dupDeliveries}, states ${JSON.stringify(states)}, total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
});
