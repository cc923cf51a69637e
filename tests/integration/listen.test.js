'use strict';
// `herald listen` as a device: receives a push through the HTTP API, prints
// it, and prints a message id it has seen once only.
const test = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const h = require('./helpers');

function listen(t, srv, extra) {
  const p = spawn(h.HERALD, ['listen', '--server', `127.0.0.1:${srv.devPort}`, ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  h.live.add(p);
  const st = { out: '', err: '', proc: p };
  p.stdout.on('data', (d) => { st.out += d; });
  p.stderr.on('data', (d) => { st.err += d; });
  st.exited = new Promise((resolve) => p.on('exit', (code) => { h.live.delete(p); resolve(code); }));
  t.after(() => { if (p.exitCode === null) p.kill('SIGKILL'); });
  return st;
}

async function until(cond, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await h.sleep(50);
  }
}

for (const ws of [false, true]) {
  test(`listen --count 1 prints a push (${ws ? 'websocket' : 'raw tcp'})`, async (t) => {
    const srv = await h.startServe(t);
    const l = listen(t, srv, ['--app', 'test', '--secret', h.SECRET, '--device', 'ldev',
      '--count', '1', ...(ws ? ['--ws'] : [])]);
    await until(() => l.err.includes('connected'));
    const r = await h.push(srv, { deviceId: 'ldev', payload: 'hi from the test' });
    assert.equal(r.status, 200);
    assert.equal(r.json.state, 'written');
    assert.equal(await l.exited, 0);
    assert.match(l.out, new RegExp(`^push msgId=${r.json.msgId} timeline=inbox seq=\\d+ payload=hi from the test\\n$`));
  });
}

test('listen drops a duplicate message id and keeps heartbeating', async (t) => {
  // A fake server built here sends the same msgId twice, then a new one;
  // listen must print two lines and ack.
  const net = require('node:net');
  const acks = [];
  let sockRef;
  const server = net.createServer((sock) => {
    sockRef = sock;
    let buf = Buffer.alloc(0), pre = false;
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!pre && buf.length >= 7) { pre = true; buf = buf.subarray(7); }
      while (pre && buf.length >= 4 && buf.length >= buf.readUInt32BE(0)) {
        const n = buf.readUInt32BE(0);
        const p = h.dec('Package', buf.subarray(4, n));
        buf = buf.subarray(n);
        if (p.cmd === h.CMD.HELLO) {
          sock.write(h.frame({ cmd: h.CMD.HELLO, reqId: p.reqId, body: h.enc('HelloRsp', { deviceId: 'd' }) }));
          const msg = (id, text) => h.full('PushMsg', { msgId: id, payload: Buffer.from(text), needAck: true, timeline: 2 });
          const batch = (m) => h.frame({ cmd: h.CMD.PUSH, body: h.enc('PushBatch', { msgs: [m] }) });
          sock.write(batch(msg('m-1', 'first')));
          sock.write(batch(msg('m-1', 'first again')));
          sock.write(batch(msg('m-2', 'second')));
        } else if (p.cmd === h.CMD.ACK) {
          acks.push(h.dec('AckReq', p.body));
        }
      }
    });
    sock.on('error', () => {});
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => { if (sockRef) sockRef.destroy(); server.close(); });
  const srv = { devPort: server.address().port };
  const l = listen(t, srv, ['--token', h.token('d'), '--count', '2']);
  assert.equal(await l.exited, 0);
  const lines = l.out.trim().split('\n');
  assert.deepEqual(lines, ['push msgId=m-1 timeline=online payload=first',
    'push msgId=m-2 timeline=online payload=second']);
  await until(() => acks.length >= 2);
  assert.deepEqual(acks[0].msgIds, ['m-1']);
});

test('herald push CLI reaches a listening device', async (t) => {
  const srv = await h.startServe(t);
  const l = listen(t, srv, ['--token', h.token('cli-dev'), '--count', '1', '--json']);
  await until(() => l.err.includes('connected'));
  const { execFileSync } = require('node:child_process');
  const out = execFileSync(h.HERALD, ['push', 'device', '--api', srv.api, '--key', h.KEY,
    '--device', 'cli-dev', '--payload', 'via cli'], { encoding: 'utf8' });
  const ans = JSON.parse(out);
  assert.equal(ans.state, 'written');
  assert.equal(await l.exited, 0);
  const got = JSON.parse(l.out.trim());
  assert.equal(got.msgId, ans.msgId);
  assert.equal(got.payload, 'via cli');
});

// Pointed at the wrong port or given a URL, listen says what is wrong
// instead of looping on "frame too large".
test('listen: the push API port is not a device port, ws:// means --ws', async (t) => {
  const srv = await h.startServe(t);
  const api = srv.api.replace('http://', '');
  for (const ws of [false, true]) {
    const p = spawn(h.HERALD, ['listen', '--server', ws ? `ws://${api}` : api,
      '--token', h.token('wrong'), '--count', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    h.live.add(p);
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    const code = await new Promise((resolve) => {
      const timer = setTimeout(() => p.kill('SIGKILL'), 8000);
      p.on('exit', (c) => { clearTimeout(timer); h.live.delete(p); resolve(c); });
    });
    assert.equal(code, 1, `${ws ? 'ws' : 'tcp'}: exit ${code}: ${err}`);
    assert.match(err, /this is not a device port/);
    assert.doesNotMatch(err, /reconnecting/);
  }
  const ok = spawn(h.HERALD, ['listen', '--server', `ws://127.0.0.1:${srv.devPort}/v1/ws`,
    '--app', 'test', '--secret', h.SECRET, '--device', 'wsdev', '--count', '1'],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  h.live.add(ok);
  let out = '', err = '';
  ok.stdout.on('data', (d) => { out += d; });
  ok.stderr.on('data', (d) => { err += d; });
  t.after(() => ok.kill('SIGKILL'));
  await until(() => err.includes('connected transport=ws'));
  const r = await h.push(srv, { deviceId: 'wsdev', payload: 'over ws', ttl: 0 });
  assert.equal(r.status, 200);
  await until(() => out.includes('payload=over ws'));
  assert.match(out, /^push msgId=[0-9a-f]{24} timeline=online payload=over ws\n/);
});
