'use strict';
// `herald trace MSG_ID`: the path of a message pushed to an offline device
// that connects later.  The connect-time sync delivers it, so it must show
// routed and written (counted by the sync) before acked.
//
//   HERALD_BUILD=build NODE_PATH=$PWD/tests/js/node_modules \
//     node --test --test-concurrency=1 tests/integration/trace.test.js

const { test } = require('node:test');
const assert = require('node:assert');
const { execFile } = require('node:child_process');
const WebSocket = require('ws');
const h = require('./helpers');

function trace(srv, id, key = h.KEY) {
  return new Promise((resolve) => {
    execFile(h.HERALD, ['trace', id, '--key', key, '--api', srv.api],
      { encoding: 'utf8' }, (err, stdout, stderr) =>
        resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

async function until(cond, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what} not met in time`);
    await h.sleep(25);
  }
}

async function message(srv, id) {
  const r = await fetch(`${srv.api}/v1/messages/${id}`,
    { headers: { authorization: `Bearer ${h.KEY}` } });
  assert.equal(r.status, 200);
  return r.json();
}

// The npm ws client in JSON mode, acking each inbox push.
async function wsDevice(t, srv, id) {
  const ws = new WebSocket(`ws://127.0.0.1:${srv.devPort}/v1/ws?token=${h.token(id)}`);
  const dev = { pushes: [] };
  ws.on('message', (data, bin) => {
    if (bin) return;
    const m = JSON.parse(data);
    if (m.cmd !== 'push') return;
    dev.pushes.push(m);
    if (m.needAck) ws.send(JSON.stringify({ cmd: 'ack', inboxSeq: m.seq }));
  });
  ws.on('error', () => {});
  t.after(() => new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    ws.once('close', resolve);
    ws.terminate();
  }));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return dev;
}

test('herald trace: offline device, connects later, acks', async (t) => {
  const srv = await h.startServe(t);
  const device = `trace-${process.pid}`;
  const r = await h.push(srv, { deviceId: device, payload: 'later', ttl: 3600 });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.state, 'stored');
  const msgId = r.json.msgId;

  const dev = await wsDevice(t, srv, device);
  await until(() => dev.pushes.some((m) => m.msgId === msgId), 5000, 'sync delivers');
  await until(async () => (await message(srv, msgId)).timeline.acked.at > 0, 5000, 'acked');
  // routed/written are flushed every 100 ms; acked may land first.
  await until(async () => (await message(srv, msgId)).timeline.written.count > 0, 5000,
    'written counted by the sync');

  const out = await trace(srv, msgId);
  assert.equal(out.code, 0, out.stderr);
  const lines = out.stdout.split('\n');
  assert.match(lines[0], new RegExp(`^msg ${msgId}  app test  kind single  ttl 3600`));
  const iso = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z';
  const at = (step, tail = '') => {
    const i = lines.findIndex((l) => new RegExp(`^${step} +${iso}${tail}$`).test(l));
    assert.ok(i > 0, `no ${step} step in:\n${out.stdout}`);
    return i;
  };
  const steps = [at('accepted'), at('stored', '  \\(1 device\\)'), at('routed', '  \\(1\\)'),
    at('written', '  \\(1\\)'), at('acked', '  \\(1\\)')];
  assert.deepEqual([...steps].sort((a, b) => a - b), steps, out.stdout);
  assert.ok(!/^expired/m.test(out.stdout), out.stdout);
});

test('herald trace: unknown id and bad key exit 1 with a message', async (t) => {
  const srv = await h.startServe(t);
  let out = await trace(srv, '000000000000000000000000');
  assert.equal(out.code, 1);
  assert.match(out.stderr, /no message 000000000000000000000000/);
  const r = await h.push(srv, { deviceId: 'x', payload: 'p' });
  out = await trace(srv, r.json.msgId, 'WRONG');
  assert.equal(out.code, 1);
  assert.match(out.stderr, /401/);
  out = await trace(srv, 'not/an id');
  assert.equal(out.code, 1);
});

// A broadcast is stored once, not "for 1 device"; an all-online push has
// no ttl worth printing and counts the devices it targeted; an
// online-only push to an offline device says it was dropped.
test('herald trace: broadcasts, all-online and dropped online-only pushes read right', async (t) => {
  const srv = await h.startServe(t);
  await wsDevice(t, srv, 'tr-a');
  await wsDevice(t, srv, 'tr-b');
  const all = await h.push(srv, { payload: 'to all', ttl: 600 }, { path: '/v1/push/all' });
  const online = await h.push(srv, { payload: 'to online' }, { path: '/v1/push/online' });
  const gone = await h.push(srv, { deviceId: 'tr-offline', payload: 'nobody', ttl: 0 });
  assert.equal(all.status, 200);
  assert.equal(online.status, 200);
  assert.equal(online.json.targeted, 2);
  assert.equal(gone.json.state, 'dropped');
  // An online-only push's record is written after its answer: a moment.
  await until(async () => {
    const r = await fetch(`${srv.api}/v1/messages/${gone.json.msgId}`,
      { headers: { authorization: `Bearer ${h.KEY}` } });
    return r.status === 200 && (await r.json()).timeline.dropped.count === 1;
  }, 5000, 'the online-only push counted dropped');
  for (const id of [all.json.msgId, online.json.msgId]) {
    await until(async () => (await fetch(`${srv.api}/v1/messages/${id}`,
      { headers: { authorization: `Bearer ${h.KEY}` } })).status === 200, 5000, `${id} recorded`);
  }

  let out = await trace(srv, all.json.msgId);
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /^msg \S+  app test  kind all  ttl 600  targets every device\n/);
  assert.match(out.stdout, /^stored +\S+  \(broadcast timeline, once for every device\)$/m);
  assert.doesNotMatch(out.stdout, /1 device/);

  out = await trace(srv, online.json.msgId);
  assert.match(out.stdout, /^msg \S+  app test  kind online  online-only  targets 2\n/);

  out = await trace(srv, gone.json.msgId);
  assert.match(out.stdout, /^msg \S+  app test  kind single  online-only  targets 1\n/);
  assert.match(out.stdout, /^dropped +\S+  \(1 device never got it\)$/m);
});
