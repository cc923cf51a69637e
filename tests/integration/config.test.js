'use strict';
// The config file (docs/config.md): `herald config check|example|doc`,
// precedence defaults < file < environment < flags, SIGHUP live reload
// (a new rate limit applies while a device and a keep-alive API connection
// stay connected; a bad file keeps the old settings; options that need a
// restart are named; app keys and secrets change) and JSON logs.
//
//   HERALD_BUILD=build NODE_PATH=$PWD/tests/js/node_modules \
//     node --test tests/integration/config.test.js
const test = require('node:test');
const assert = require('node:assert');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const h = require('./helpers');

const ROOT = path.resolve(__dirname, '..', '..');
const DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-conf-'));
const APP_SECRET = 'CfgSecretNeverPrinted9d1f';
const APP_KEY = 'CfgApiKeyNeverPrinted4e7a';

function conf(name, text) {
  const p = path.join(DIR, name);
  fs.writeFileSync(p, text);
  return p;
}

// A herald CLI run to completion, with extra environment variables.
function herald(args, env = {}) {
  const r = spawnSync(h.HERALD, args, { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

async function until(cond, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what} not met in time`);
    await h.sleep(20);
  }
}

// Sends SIGHUP and waits for the n-th line matching re on stderr.
async function reload(srv, re, n) {
  srv.proc.kill('SIGHUP');
  await until(() => (srv.stderr().match(new RegExp(re.source, 'g')) || []).length >= n,
    5000, `log ${re}`);
}

// ---- herald config check / example / doc -----------------------------------

test('config check: a good file is valid, its settings printed, no secret', () => {
  const f = conf('good.conf', `# comment\n\nport = 7200\nrate-app = 5000\n` +
    `log-level = debug\napp = cfgapp:${APP_SECRET}:${APP_KEY}\n`);
  const r = herald(['config', 'check', f]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /is valid/);
  assert.match(r.out, /^port = 7200$/m);
  assert.match(r.out, /^rate-app = 5000$/m);
  assert.match(r.out, /^log-level = debug$/m);
  assert.match(r.out, /^api-port = 8080$/m, 'defaults are shown too');
  assert.match(r.out, /^app = cfgapp:/m);
  for (const s of [APP_SECRET, APP_KEY]) {
    assert.ok(!r.out.includes(s) && !r.err.includes(s), 'a secret was printed');
  }
});

test('config check: each error names FILE:LINE, exit 1, no secret', () => {
  const cases = [
    ['port = 70000\n', 1, "port: '70000' is out of range 0..65535"],
    ['# c\nbogus-key = 1\n', 2, "unknown key 'bogus-key'"],
    [`\n\napp ${APP_SECRET}\n`, 3, "missing '='"],
    ['rate-app = lots\n', 1, "rate-app: 'lots' is not a whole number"],
    ['log-level = loud\n', 1, "log-level: 'loud' is not one of debug, info"],
    ['log-format = xml\n', 1, "log-format: 'xml' is not one of logfmt, json"],
    [`app = ${APP_SECRET}\n`, 1, 'app: want NAME:SECRET:APIKEY'],
    ['port = 1\nport = 2\n', 2, 'port given twice (first on line 1)'],
    ['config = other.conf\n', 1, 'config cannot be set in a config file'],
    ['no-fsync = perhaps\n', 1, "no-fsync: 'perhaps' is not true or false"],
  ];
  cases.forEach(([text, line, msg], i) => {
    const f = conf(`bad${i}.conf`, text);
    const r = herald(['config', 'check', f]);
    assert.equal(r.code, 1, `${text}: exit ${r.code}`);
    assert.ok(r.err.includes(`${f}:${line}: ${msg}`), `${text}: ${r.err}`);
    assert.ok(!r.err.includes(APP_SECRET) && !r.out.includes(APP_SECRET), 'secret echoed');
  });
  // Several errors in one file are all reported; options checked together.
  const f = conf('many.conf', 'port = x\nhb-min = 700\nwhat = 1\n');
  const r = herald(['config', 'check', f]);
  assert.equal(r.code, 1);
  assert.match(r.err, /many\.conf:1: port/);
  assert.match(r.err, /many\.conf:3: unknown key 'what'/);
  assert.match(r.err, /2 errors/);
  const hb = herald(['config', 'check', conf('hb.conf', 'hb-min = 700\n')]);
  assert.equal(hb.code, 1);
  assert.match(hb.err, /hb-min \(700\) is above hb-max \(600\)/);
  assert.equal(herald(['config', 'check', path.join(DIR, 'missing.conf')]).code, 1);
});

test('config example is deploy/herald.conf, valid, every option in docs/config.md', () => {
  const ex = herald(['config', 'example']);
  assert.equal(ex.code, 0);
  const shipped = fs.readFileSync(path.join(ROOT, 'deploy', 'herald.conf'), 'utf8');
  assert.equal(shipped, ex.out, 'deploy/herald.conf differs: herald config example > deploy/herald.conf');
  const chk = herald(['config', 'check', path.join(ROOT, 'deploy', 'herald.conf')]);
  assert.equal(chk.code, 0, chk.err);
  const doc = herald(['config', 'doc']);
  assert.equal(doc.code, 0);
  const md = fs.readFileSync(path.join(ROOT, 'docs', 'config.md'), 'utf8');
  assert.ok(md.includes(doc.out), 'docs/config.md lacks `herald config doc` output');
  // Every --help flag is a documented option (one table feeds both).
  const help = herald(['serve', '--help']).out;
  const flags = [...help.matchAll(/^ {2}--([a-z-]+)/gm)].map((m) => m[1]).filter((f) => f !== 'help');
  assert.ok(flags.length >= 20, `only ${flags.length} flags`);
  for (const f of flags) assert.ok(md.includes(`| \`${f}\``), `${f} not in docs/config.md`);
});

test('precedence: defaults < file < environment < flags', async (t) => {
  const f = conf('prec.conf', 'max-payload = 100\nrate-app = 5\n');
  const env = { HERALD_RATE_APP: '6' };
  const chk = herald(['config', 'check', f], env);
  assert.equal(chk.code, 0, chk.err);
  assert.match(chk.out, /^rate-app = 6$/m, 'env over file');
  assert.match(chk.out, /^max-payload = 100$/m);
  assert.match(chk.out, /from the environment: HERALD_RATE_APP/);

  // Observable on a running server: the payload limit.
  const sizes = async (srv) => {
    const r = [];
    for (const n of [150, 250]) r.push((await h.push(srv, { deviceId: 'p1', payload: 'x'.repeat(n) })).status);
    return r;
  };
  const a = await h.startServe(t, ['--config', f, '--admin-port', '0']);
  assert.deepEqual(await sizes(a), [413, 413], 'file: 100 bytes');
  const b = await h.startServe(t, ['--config', f, '--admin-port', '0'], { env: { HERALD_MAX_PAYLOAD: '200' } });
  assert.deepEqual(await sizes(b), [200, 413], 'env: 200 bytes');
  const c = await h.startServe(t, ['--config', f, '--admin-port', '0', '--max-payload', '300'],
    { env: { HERALD_MAX_PAYLOAD: '200', HERALD_CONFIG: '/nonexistent.conf' } });
  assert.deepEqual(await sizes(c), [200, 200], 'flag: 300 bytes; --config over $HERALD_CONFIG');
  await Promise.all([a.stop(), b.stop(), c.stop()]);

  // $HERALD_CONFIG names the file when --config does not; a bad one stops serve.
  const bad = herald(['serve', '--port', '0'], { HERALD_CONFIG: conf('bad.conf', 'port = -5\n') });
  assert.equal(bad.code, 2);
  assert.match(bad.err, /bad\.conf:1: port: '-5' is out of range/);
});

// ---- SIGHUP ------------------------------------------------------------------

// One HTTP/1.1 keep-alive connection to the push API, request after request.
class KeepAlive {
  constructor(api) {
    const u = new URL(api);
    this.sock = net.connect(Number(u.port), u.hostname);
    this.sock.on('error', () => {});
    this.buf = '';
    this.closed = false;
    this.sock.on('close', () => { this.closed = true; });
    this.sock.on('data', (d) => { this.buf += d; if (this.wake) this.wake(); });
  }
  async push(deviceId, payload) {
    const body = JSON.stringify({ deviceId, payload });
    this.sock.write(`POST /v1/push/device HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${h.KEY}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    await until(() => {
      const end = this.buf.indexOf('\r\n\r\n');
      const m = /content-length: (\d+)/i.exec(this.buf);
      return end >= 0 && m && this.buf.length >= end + 4 + Number(m[1]);
    }, 5000, 'keep-alive answer');
    const end = this.buf.indexOf('\r\n\r\n');
    const len = Number(/content-length: (\d+)/i.exec(this.buf)[1]);
    const status = Number(this.buf.split(' ')[1]);
    this.buf = this.buf.slice(end + 4 + len);
    return status;
  }
}

test('SIGHUP applies a new rate limit without dropping a device', async (t) => {
  const f = conf('live.conf', 'rate-app = 100000\nburst = 100000\n');
  const srv = await h.startServe(t, ['--config', f, '--log-level', 'info', '--admin-port', '0']);
  const dev = new h.TcpDevice(srv.devPort);
  t.after(() => dev.destroy());
  await dev.connected;
  assert.equal((await dev.hello(h.token('live-dev'))).ret, 0);
  const ka = new KeepAlive(srv.api);
  t.after(() => ka.sock.destroy());
  assert.equal(await ka.push('live-dev', 'before'), 200);
  await dev.waitFor((p) => p.cmd === h.CMD.PUSH);

  const burst = async (n) => (await Promise.all(Array.from({ length: n },
    () => h.push(srv, { deviceId: 'live-dev', payload: 'b' })))).map((r) => r.status);
  assert.ok((await burst(10)).every((s) => s === 200), 'high limit: all accepted');
  await dev.waitFor((p) => p.cmd === h.CMD.PUSH);

  fs.writeFileSync(f, 'rate-app = 1\nburst = 1\nworkers = 3\n');
  await reload(srv, /msg="config reloaded"/, 1);
  const line = srv.stderr().split('\n').find((l) => l.includes('config reloaded'));
  assert.match(line, /changed="rate-app,burst"/);
  assert.match(srv.stderr(), /msg="config options need a restart" options=workers/);
  const st = await burst(10);
  assert.ok(st.filter((s) => s === 429).length >= 8, `low limit: ${st}`);

  // A bad file: nothing of it applies (its rate-app would lift the limit).
  fs.writeFileSync(f, 'rate-app = 100000\nburst = 100000\nport = nope\n');
  await reload(srv, /msg="config reload failed"/, 1);
  assert.match(srv.stderr(), /live\.conf:3: port: 'nope' is not a whole number/);
  const still = await burst(5);
  assert.ok(still.filter((s) => s === 429).length >= 4, `old limit kept: ${still}`);

  // The device and the keep-alive connection were never closed, and serve.
  assert.equal(dev.closedAt, null, 'the device was disconnected');
  assert.equal(ka.closed, false, 'the keep-alive API connection was closed');
  await h.sleep(1100); // one token of rate 1/s
  const payload = `after reload ${Date.now()}`;
  assert.equal(await ka.push('live-dev', payload), 200);
  const p = await dev.waitFor((x) => x.cmd === h.CMD.PUSH &&
    h.dec('PushBatch', x.body).msgs.some((m) => m.payload.toString() === payload));
  assert.ok(p);
  assert.equal(dev.closedAt, null);
});

test('SIGHUP changes app keys and secrets; JSON logs parse', async (t) => {
  const spec = (s, k) => `app = cfg2:${s}:${k}\nlog-format = json\n`;
  const f = conf('apps.conf', spec('OldSecret1', 'OldKey1'));
  const srv = await h.startServe(t, ['--config', f, '--log-level', 'info', '--admin-port', '0']);
  const push = (key) => h.push(srv, { deviceId: 'k1', payload: 'x' }, { key });
  const hello = async (secret) => {
    const d = new h.TcpDevice(srv.devPort);
    t.after(() => d.destroy());
    await d.connected;
    return (await d.hello(h.token('k1', { app: 'cfg2', secret }))).ret;
  };
  assert.equal((await push('OldKey1')).status, 200);
  assert.equal(await hello('OldSecret1'), 0);

  fs.writeFileSync(f, spec('NewSecret2', 'NewKey2'));
  await reload(srv, /"msg":"config reloaded"/, 1);
  assert.equal((await push('NewKey2')).status, 200);
  assert.equal((await push('OldKey1')).status, 401, 'a key dropped from the file still works');
  assert.equal(await hello('NewSecret2'), 0);
  assert.notEqual(await hello('OldSecret1'), 0, 'the old secret still signs tokens');
  assert.equal((await push(h.KEY)).status, 200, 'the --app of the flags stays');

  const lines = srv.stderr().trim().split('\n').filter((l) => l.startsWith('{'));
  assert.ok(lines.length >= 2, srv.stderr());
  for (const l of lines) {
    const o = JSON.parse(l);
    assert.ok(o.ts && o.level && o.msg, l);
  }
  const done = lines.map((l) => JSON.parse(l)).find((o) => o.msg === 'config reloaded');
  assert.equal(done.changed, 'app');
  for (const s of ['OldSecret1', 'OldKey1', 'NewSecret2', 'NewKey2']) {
    assert.ok(!srv.stderr().includes(s) && !srv.stdout().includes(s), `${s} logged`);
  }
});
