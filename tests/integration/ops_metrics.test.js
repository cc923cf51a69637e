'use strict';
// The admin listener of a real `herald serve`: /metrics parses as
// Prometheus text and its counters move by exactly what a scripted workload
// did (raw TCP devices, heartbeats, pushes through the HTTP API, a refused
// token, a disconnect); /healthz answers; /readyz is 200, then 503
// "draining" after SIGTERM while a device is still connected.
const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');

async function startWithAdmin(t, extra = []) {
  const adminPort = await h.freePort();
  const srv = await h.startServe(t, ['--admin-port', String(adminPort), ...extra]);
  srv.admin = `http://127.0.0.1:${adminPort}`;
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`${srv.admin}/healthz`);
      if (r.status === 200) return srv;
    } catch (_) { /* not up yet */ }
    await h.sleep(50);
  }
  throw new Error(`admin listener did not answer on ${adminPort}: ${srv.stderr()}`);
}

// Prometheus text format 0.0.4, strictly enough to catch a broken line:
// every line is a comment (# HELP/# TYPE name ...) or `name{labels} value`.
function parseProm(text) {
  const samples = new Map();
  const types = new Map();
  const lines = text.split('\n');
  assert.equal(lines.pop(), '', 'the text ends with a newline');
  const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/y;
  for (const line of lines) {
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
      assert.ok(m, `bad comment line: ${line}`);
      if (m[1] === 'TYPE') {
        assert.ok(['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3]), line);
        types.set(m[2], m[3]);
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `bad sample line: ${JSON.stringify(line)}`);
    const labels = {};
    if (m[3]) {
      let pos = 0;
      const body = m[3];
      while (pos < body.length) {
        labelRe.lastIndex = pos;
        const lm = labelRe.exec(body);
        assert.ok(lm, `bad labels in: ${line}`);
        labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
        pos = labelRe.lastIndex;
        if (body[pos] === ',') pos++;
      }
    }
    const v = m[4] === '+Inf' ? Infinity : Number(m[4]);
    assert.ok(!Number.isNaN(v), `bad value in: ${line}`);
    const key = m[1] + JSON.stringify(Object.entries(labels).sort());
    assert.ok(!samples.has(key), `duplicate sample: ${line}`);
    samples.set(key, { name: m[1], labels, value: v });
  }
  return { samples, types };
}

// Sum of a metric's samples whose labels include `want`.
function val(prom, name, want = {}) {
  let sum = 0, seen = false;
  for (const s of prom.samples.values()) {
    if (s.name !== name) continue;
    if (Object.entries(want).every(([k, v]) => s.labels[k] === v)) { sum += s.value; seen = true; }
  }
  assert.ok(seen, `no sample ${name} ${JSON.stringify(want)}`);
  return sum;
}

async function scrape(srv) {
  const r = await fetch(`${srv.admin}/metrics`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  return parseProm(await r.text());
}

async function until(pred, ms = 5000) {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) return false;
    await h.sleep(50);
  }
  return true;
}

test('/metrics counters follow a scripted workload', { timeout: 60000 }, async (t) => {
  const srv = await startWithAdmin(t);
  const before = await scrape(srv);
  assert.equal(before.types.get('herald_device_commands_total'), 'counter');
  assert.equal(before.types.get('herald_delivery_written_latency_seconds'), 'histogram');
  assert.equal(before.types.get('herald_connections'), 'gauge');
  assert.ok(val(before, 'process_resident_memory_bytes') > 1e5, 'RSS is read from /proc');
  assert.ok(val(before, 'process_threads') >= 3, 'main, gateway and admin threads at least');
  assert.ok(val(before, 'process_open_fds') >= 3);

  const d1 = new h.TcpDevice(srv.devPort);
  const d2 = new h.TcpDevice(srv.devPort);
  t.after(() => { d1.destroy(); d2.destroy(); });
  assert.equal((await d1.hello(h.token('ops-1'))).ret, 0);
  assert.equal((await d2.hello(h.token('ops-2'))).ret, 0);
  const bad = new h.TcpDevice(srv.devPort);
  t.after(() => bad.destroy());
  const badRsp = await bad.hello(h.token('ops-3', { secret: 'WRONG' }));
  assert.notEqual(badRsp.ret, 0, 'a token signed with the wrong secret is refused');

  for (let i = 0; i < 2; i++) {
    d1.send(h.CMD.HEARTBEAT, 'HeartbeatReq', { interval: 60 }, 10 + i);
    await d1.waitFor((p) => p.cmd === h.CMD.HEARTBEAT);
  }
  const PUSHES = 3;
  let msgId, lastSeq = 0;
  for (let i = 0; i < PUSHES; i++) {
    const r = await h.push(srv, { deviceId: 'ops-1', payload: `m${i}` });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    msgId = r.json.msgId;
    const p = await d1.waitFor((q) => q.cmd === h.CMD.PUSH);
    const msgs = h.dec('PushBatch', p.body).msgs;
    lastSeq = Number(msgs[msgs.length - 1].seq);
  }
  // One cumulative ack for all three: one accepted -> acked sample.
  d1.send(h.CMD.ACK, 'AckReq', { inboxSeq: lastSeq }, 20);
  await d1.waitFor((p) => p.cmd === h.CMD.ACK);
  d2.destroy();

  let after;
  const settled = await until(async () => {
    after = await scrape(srv);
    // d2's close is counted by a worker thread in two steps (disconnect,
    // then the gauge), so wait until both show, not just the first.
    return val(after, 'herald_disconnects_total', { reason: 'peer_gone' }) -
        val(before, 'herald_disconnects_total', { reason: 'peer_gone' }) >= 1 &&
      val(after, 'herald_connections', { transport: 'tcp' }) === 1;
  });
  assert.ok(settled, 'the closed device was counted as a disconnect');
  const d = (name, labels) => val(after, name, labels) - val(before, name, labels);

  assert.equal(d('herald_connects_total', { transport: 'tcp' }), 2);
  assert.equal(d('herald_device_commands_total', { cmd: 'hello', result: 'ok' }), 2);
  assert.equal(d('herald_device_commands_total', { cmd: 'hello', result: 'unauthorized' }), 1,
    JSON.stringify([...after.samples.values()].filter((s) => s.labels.cmd === 'hello')));
  assert.equal(d('herald_device_commands_total', { cmd: 'heartbeat', result: 'ok' }), 2);
  assert.equal(d('herald_heartbeats_total'), 2);
  assert.equal(d('herald_device_command_duration_seconds_count', { cmd: 'heartbeat' }), 2);
  assert.equal(d('herald_deliveries_total'), PUSHES);
  assert.equal(d('herald_delivery_written_latency_seconds_count'), PUSHES);
  assert.equal(d('herald_delivery_written_latency_seconds_bucket', { le: '+Inf' }), PUSHES);
  assert.equal(d('herald_disconnects_total', { reason: 'peer_gone' }), 1,
    JSON.stringify([...after.samples.values()].filter((s) => s.name === 'herald_disconnects_total' && s.value)));
  assert.equal(val(after, 'herald_connections', { transport: 'tcp' }), 1, 'd1 is still connected');
  assert.ok(val(after, 'herald_gateway_sockets') >= 1);
  // Buckets are cumulative.
  let prev = 0;
  for (const s of after.samples.values()) {
    if (s.name !== 'herald_delivery_written_latency_seconds_bucket') continue;
    assert.ok(s.value >= prev, 'cumulative buckets never decrease');
    prev = s.value;
  }

  assert.ok(d('herald_http_request_duration_seconds_count', { route: 'push_device' }) >= PUSHES);
  assert.equal(d('herald_delivery_acked_latency_seconds_count'), 1);
  // Every stored push went through the store's append path, timed from
  // submit to durable commit; the two logins were device sightings.
  assert.ok(d('herald_store_op_duration_seconds_count', { op: 'append' }) >= PUSHES);
  assert.ok(d('herald_store_op_duration_seconds_count', { op: 'other' }) >= 2);
  assert.equal(d('herald_store_errors_total', { op: 'append' }), 0);

  // Store figures are read at scrape time.
  assert.equal(after.types.get('herald_queue_depth'), 'gauge');
  assert.ok(val(after, 'herald_queue_depth', { queue: 'store' }) >= 0);
  assert.ok(val(after, 'herald_queue_depth', { queue: 'mailbox' }) >= 0);
  assert.ok(val(after, 'herald_queue_depth', { queue: 'delivery' }) >= 0);
  assert.equal(after.types.get('herald_expired_total'), 'counter');

  // The message's timeline, from the store.
  let tl;
  const traced = await until(async () => {
    const r = await fetch(`${srv.admin}/api/messages/${encodeURIComponent(msgId)}`);
    tl = { status: r.status, body: await r.json() };
    return r.status === 200 && tl.body.timeline.written.count > 0;
  });
  assert.ok(traced, `timeline of ${msgId}: ${JSON.stringify(tl)}`);
  assert.equal(tl.body.msgId, msgId);
  assert.equal(tl.body.kind, 'single');
  // The one shape: what the push API's GET /v1/messages/ID answers.
  const api = await fetch(`${srv.api}/v1/messages/${msgId}`, { headers: { authorization: `Bearer ${h.KEY}` } });
  const apiBody = await api.json();
  assert.deepEqual(Object.keys(tl.body), Object.keys(apiBody));
  assert.deepEqual(Object.keys(tl.body.timeline), Object.keys(apiBody.timeline));
  const events = Object.entries(tl.body.timeline);
  assert.equal(events[0][0], 'accepted');
  for (const [ev, v] of events.slice(1)) {
    assert.ok(v.at === 0 || v.at >= events[0][1].at, `${ev} before its acceptance`);
  }
  const unknown = await fetch(`${srv.admin}/api/messages/no-such-message`);
  assert.equal(unknown.status, 404);
  await unknown.body?.cancel();

  const hz = await fetch(`${srv.admin}/healthz`);
  assert.equal(hz.status, 200);
  assert.equal(await hz.text(), 'ok\n');
  const stats = await (await fetch(`${srv.admin}/api/stats`)).json();
  assert.equal(stats.connections, 1);
  assert.equal(stats.totals.deliveries, val(after, 'herald_deliveries_total'));
  assert.ok(stats.delivery_latency_ms.count >= PUSHES);
  assert.equal(stats.commands.hello.errors, 1);
});

test('/readyz turns 503 "draining" after SIGTERM with a device connected', { timeout: 60000 }, async (t) => {
  const srv = await startWithAdmin(t, ['--drain-grace', '3000']);
  const r0 = await fetch(`${srv.admin}/readyz`);
  assert.equal(r0.status, 200);
  assert.deepEqual(await r0.json(), { ready: true });

  const dev = new h.TcpDevice(srv.devPort);
  t.after(() => dev.destroy());
  assert.equal((await dev.hello(h.token('drainee'))).ret, 0);

  srv.proc.kill('SIGTERM');
  let last;
  const unready = await until(async () => {
    try {
      const r = await fetch(`${srv.admin}/readyz`);
      last = { status: r.status, body: await r.json() };
      return r.status === 503;
    } catch (_) { return false; }
  }, 2500);
  assert.ok(unready, `readyz stayed ${JSON.stringify(last)}`);
  assert.deepEqual(last.body, { ready: false, reason: 'draining' });
  // /healthz still answers while draining: the process is alive.
  assert.equal((await fetch(`${srv.admin}/healthz`)).status, 200);
  // After the grace the device is kicked with ERR_DRAINING and herald exits.
  const kick = await dev.waitFor((p) => p.cmd === h.CMD.KICK, 10000);
  assert.ok(kick);
  await dev.waitClosed(10000);
  await new Promise((resolve) => (srv.proc.exitCode !== null ? resolve() : srv.proc.once('exit', resolve)));
  assert.equal(srv.proc.exitCode, 0);
});
