'use strict';
// What a new user hits first (issue 13): every refusal says what was wrong
// and why, at once.  Store paths that cannot work, a second server on the
// same store.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const h = require('./helpers');

// Runs herald with args until it exits (or ms pass): { code, out, err, ms }.
function run(args, ms = 10000, opts = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(h.HERALD, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    h.live.add(p);
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), ms);
    p.on('exit', (code, sig) => {
      clearTimeout(timer);
      h.live.delete(p);
      resolve({ code, sig, out, err, ms: Date.now() - t0 });
    });
  });
}

const PORTS = ['--port', '0', '--api-port', '0', '--tars-port', '-1', '--admin-port', '0',
  '--host', '127.0.0.1'];

function tmpdir(t, name) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), name));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

test('a store in a folder that does not exist: the folder is named', async (t) => {
  const d = tmpdir(t, 'herald-fr-');
  const db = path.join(d, 'no', 'such', 'herald.db');
  const r = await run(['serve', ...PORTS, '--db', db]);
  assert.notEqual(r.code, 0);
  assert.match(r.err, new RegExp(`cannot create ${db}: the folder ${path.dirname(db)} does not exist`));
  const a = await run(['app', 'list', '--db', db]);
  assert.notEqual(a.code, 0);
  assert.match(a.err, /the folder .* does not exist/);
});

test('a store on a read-only filesystem: the system\'s reason is given', async (t) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-ro-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,ro', 'tmpfs', d], { stdio: 'ignore' });
  } catch (_) {
    fs.rmdirSync(d);
    t.skip('mounting a read-only tmpfs needs root here');
    return;
  }
  t.after(() => {
    try { execFileSync('umount', ['-l', d], { stdio: 'ignore' }); } catch (_) {}
    fs.rmdirSync(d);
  });
  const r = await run(['serve', ...PORTS, '--db', path.join(d, 'herald.db')]);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /cannot create .*herald\.db: Read-only file system/);
});

test('a second server on the same store says so at once', async (t) => {
  const d = tmpdir(t, 'herald-two-');
  const db = path.join(d, 'herald.db');
  await h.startServe(t, ['--db', db]);
  const r = await run(['serve', ...PORTS, '--db', db], 15000);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /in use by another herald serve/);
  assert.ok(r.ms < 3000, `the second server took ${r.ms} ms to give up`);
});

test('serve: a bad flag is named once, with where help is', async () => {
  const r = await run(['serve', '--bogus']);
  assert.equal(r.code, 2);
  assert.equal(r.err.trim().split('\n')[0],
    "herald serve: unknown option '--bogus' (see herald serve --help)");
  const v = await run(['serve', '--port']);
  assert.match(v.err, /^herald serve: option '--port' needs a value/);
  const a = await run(['serve', 'stray']);
  assert.match(a.err, /^herald serve: unexpected argument 'stray'/);
});

test('herald --version and herald version print the same line', async () => {
  const a = await run(['--version']);
  const b = await run(['version']);
  assert.equal(a.code, 0);
  assert.match(a.out, /^herald \d+\.\d+\.\d+\n$/);
  assert.equal(a.out, b.out);
});

// Each refusal of herald push says what was wrong before any usage text.
test('herald push: every refusal says what was wrong, first', async () => {
  const env = { ...process.env, HERALD_API_KEY: '' };
  const cases = [
    [['push', 'device', '--key', 'k', '--device', 'd', 'hello'], /unexpected argument 'hello' \(the payload goes in --payload TEXT\)/],
    [['push', 'device', '--device', 'd', '--payload', 'x'], /no API key: give --key KEY or set \$HERALD_API_KEY/],
    [['push', 'device', '--key', 'k', '--payload', 'x'], /--device DEV is required/],
    [['push', 'devices', '--key', 'k', '--payload', 'x'], /at least one --device DEV is required/],
    [['push', 'device', '--key', 'k', '--device', 'd'], /no --payload TEXT or --payload-b64 B64/],
    [['push', 'device', '--key', 'k', '--device', 'd', '--payload', 'x', '--api', 'https://h:1'], /bad --api 'https:\/\/h:1'/],
  ];
  for (const [args, want] of cases) {
    const r = await run(args, 5000, { env });
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.err.split('\n')[0], want, args.join(' '));
  }
});

test('herald push: --api HOST:PORT without a scheme works, as the help shows', async (t) => {
  const srv = await h.startServe(t);
  const hostPort = srv.api.replace('http://', '');
  const r = await run(['push', 'device', '--api', hostPort, '--key', h.KEY, '--device', 'dd',
    '--payload', 'no scheme']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /"msgId":"[0-9a-f]{24}"/);
  const e = await run(['push', 'device', '--api', hostPort, '--key', h.KEY, '--device', 'dd',
    '--payload', '']);
  assert.equal(e.code, 0, 'an explicit empty payload is sent: ' + e.err);
});

test('a port clash names the port that clashed', async (t) => {
  const net = require('node:net');
  const squat = net.createServer();
  await new Promise((r) => squat.listen(0, '127.0.0.1', r));
  t.after(() => squat.close());
  const busy = squat.address().port;
  const api = await run(['serve', '--port', '0', '--api-port', String(busy), '--tars-port', '0',
    '--admin-port', '0', '--host', '127.0.0.1', '--db', path.join(tmpdir(t, 'herald-pc-'), 'h.db')]);
  assert.notEqual(api.code, 0);
  assert.match(api.err, new RegExp(`herald serve: push API port ${busy}: Address already in use`));
  assert.doesNotMatch(api.err, /TARS/);
  const tars = await run(['serve', '--port', '0', '--api-port', '0', '--tars-port', String(busy),
    '--admin-port', '0', '--host', '127.0.0.1', '--db', path.join(tmpdir(t, 'herald-pc-'), 'h.db')]);
  assert.notEqual(tars.code, 0);
  assert.match(tars.err, new RegExp(`herald serve: TARS port ${busy}: Address already in use .*--tars-port -1`));
});

// Credentials a script can capture: JSON and an environment file, the same
// shape from create and rotate-key; show hides the secret unless asked.
test('herald app: --json and --env credentials that work, show hides the secret', async (t) => {
  const d = tmpdir(t, 'herald-app-');
  const db = path.join(d, 'h.db');
  const c = await run(['app', 'create', 'shop', '--json', '--db', db]);
  assert.equal(c.code, 0, c.err);
  const cj = JSON.parse(c.out);
  assert.deepEqual(Object.keys(cj), ['app', 'secret', 'apiKey', 'unknownDevice']);
  assert.equal(cj.app, 'shop');
  const r = await run(['app', 'rotate-key', 'shop', '--json', '--db', db]);
  const rj = JSON.parse(r.out);
  assert.deepEqual(Object.keys(rj), [...Object.keys(cj), 'olderKeysRevoked']);
  assert.equal(rj.secret, cj.secret);
  assert.notEqual(rj.apiKey, cj.apiKey);
  const e = await run(['app', 'create', 'shop2', '--env', '--db', db]);
  const env = Object.fromEntries(e.out.trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));
  assert.deepEqual(Object.keys(env), ['HERALD_APP', 'HERALD_SECRET', 'HERALD_API_KEY']);
  assert.equal(env.HERALD_APP, `shop2:${env.HERALD_SECRET}:${env.HERALD_API_KEY}`);

  const shown = await run(['app', 'show', 'shop', '--db', db]);
  assert.equal(shown.code, 0);
  assert.ok(!shown.out.includes(cj.secret), 'show printed the secret');
  assert.match(shown.out, /secret +\(hidden/);
  const secret = await run(['app', 'show', 'shop', '--show-secret', '--json', '--db', db]);
  assert.equal(JSON.parse(secret.out).secret, cj.secret);
  const bad = await run(['app', 'show', 'shop', '--env', '--db', db]);
  assert.equal(bad.code, 2);
  assert.equal(bad.err.split('\n')[0], 'herald app: --env goes with create and rotate-key');

  // What they print works: the rotated key pushes, the env file's secret logs in.
  const srv = await h.startServe(t, ['--db', db]);
  const dev = new h.TcpDevice(srv.devPort);
  await dev.connected;
  const tok = execFileSync(h.HERALD, ['token', '--app', 'shop2', '--device', 'e1', '--secret',
    env.HERALD_SECRET], { encoding: 'utf8' }).trim();
  const hello = await dev.hello(tok);
  assert.equal(hello.ret, 0);
  dev.destroy();
  const p2 = await h.push(srv, { deviceId: 'x1', payload: 'x' }, { key: rj.apiKey });
  assert.equal(p2.status, 200);
  const old = await h.push(srv, { deviceId: 'x1', payload: 'x' }, { key: cj.apiKey });
  assert.equal(old.status, 401);
});

test('herald token, trace and config say what was wrong first', async () => {
  const tk = await run(['token', '--app', 'a'], 5000, { env: { ...process.env, HERALD_SECRET: '' } });
  assert.equal(tk.code, 2);
  assert.equal(tk.err.split('\n')[0], 'herald token: --device DEV is required');
  const tr = await run(['trace'], 5000, { env: { ...process.env, HERALD_API_KEY: '' } });
  assert.equal(tr.err.split('\n')[0], 'herald trace: MSG_ID is required');
  const cf = await run(['config', 'frob']);
  assert.equal(cf.err.split('\n')[0], "herald config: unknown use 'frob'");
});
