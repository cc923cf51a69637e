'use strict';
// Who may talk to herald (issue 12, "Faults and hostile load"): one rule
// for app names, enforced by the CLI, the config and the token format, and
// printed commands that a shell reads back as they were meant.
//
//   HERALD_BUILD=build NODE_PATH=$PWD/tests/js/node_modules \
//     node --test tests/integration/app_auth.test.js
const test = require('node:test');
const assert = require('node:assert');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const WebSocket = require('ws');
const h = require('./helpers');

const DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-auth-'));
test.after(() => fs.rmSync(DIR, { recursive: true, force: true }));

function herald(args, env = {}) {
  // Bounded: a serve that should refuse its config but does not is killed.
  const r = spawnSync(h.HERALD, args, { encoding: 'utf8', env: { ...process.env, ...env },
    timeout: 10000, killSignal: 'SIGKILL' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// Opens a WebSocket with tok; resolves 'open' or the HTTP status refused.
function wsTry(srv, tok) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${srv.devPort}/v1/ws?token=${tok}`);
    ws.on('open', () => { ws.terminate(); resolve('open'); });
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => { ws.terminate(); resolve({ status: res.statusCode, body: JSON.parse(body) }); });
    });
    ws.on('error', () => resolve('error'));
  });
}

// ---- item 2: one rule for app names ----------------------------------------

test('app names: the CLI refuses what a token cannot carry; nothing is stored', () => {
  const db = path.join(DIR, 'names.db');
  for (const bad of ['bad name', 'my.app', 'a:b', 'x'.repeat(64), '-x', 'tab\tname']) {
    const r = herald(['app', 'create', bad, '--db', db]);
    assert.notEqual(r.code, 0, `accepted ${JSON.stringify(bad)}: ${r.out}`);
    assert.doesNotMatch(r.out, /secret/, 'no credentials printed for a refused name');
  }
  const list = herald(['app', 'list', '--db', db]);
  assert.equal(list.code, 0, list.err);
  assert.equal(list.out.trim(), '', 'no app was created');
  // The longest good name, and every character class.
  for (const good of ['n'.repeat(63), 'A-z_0@9']) {
    const r = herald(['app', 'create', good, '--db', db]);
    assert.equal(r.code, 0, r.err);
  }
});

test('app names: config and herald token apply the same rule', () => {
  for (const bad of ['my.app', 'bad name', '-x']) {
    const r = herald(['serve', '--app', `${bad}:S:K`, '--db', path.join(DIR, 'cfg.db'),
      '--port', '0', '--api-port', '0', '--tars-port', '-1', '--admin-port', '0']);
    assert.equal(r.code, 2, `serve took app ${JSON.stringify(bad)}: ${r.err}`);
    assert.match(r.err, /NAME must be 1\.\.63 characters/);
  }
  for (const bad of ['a:b', 'my.app', 'x'.repeat(64)]) {
    const r = herald(['token', '--app', bad, '--device', 'd', '--secret', 'S']);
    assert.equal(r.code, 1, `token minted for app ${JSON.stringify(bad)}`);
  }
});

test('app create prints a herald token command that the shell runs as printed', async (t) => {
  const db = path.join(DIR, 'printed.db');
  const r = herald(['app', 'create', 'shell@app', '--db', db]);
  assert.equal(r.code, 0, r.err);
  const line = /^\s*herald token (.*)$/m.exec(r.out);
  assert.ok(line, r.out);
  const cmd = `"$HERALD" token ${line[1].replace('DEVICE', 'dev-printed')}`;
  const sh = spawnSync('sh', ['-c', cmd], { encoding: 'utf8', env: { ...process.env, HERALD: h.HERALD } });
  assert.equal(sh.status, 0, sh.stderr);
  const tok = sh.stdout.trim();
  assert.match(tok, /^shell@app\.dev-printed\.\d+\.\d+\.[A-Za-z0-9_-]{43}$/);
  const srv = await h.startServe(t, ['--db', db, '--admin-port', '0']);
  assert.equal(await wsTry(srv, tok), 'open');
});

// ---- item 3: token lifetime, revocation, failed logins, secrets ------------

// A correctly signed token minted here with node:crypto (the format of
// docs/protocol.md §1): iat null gives the first form APP.DEV.EXPIRY.SIG.
function mint(device, { iat = Math.floor(Date.now() / 1000), exp, secret = h.SECRET, app = 'test' } = {}) {
  const crypto = require('node:crypto');
  if (exp === undefined) exp = (iat === null ? Math.floor(Date.now() / 1000) : iat) + 3600;
  const signed = iat === null ? `${app}.${device}.${exp}` : `${app}.${device}.${iat}.${exp}`;
  const sig = crypto.createHmac('sha256', secret).update(signed).digest('base64url');
  return `${signed}.${sig}`;
}

// A WebSocket device that collects JSON messages and its close.
function wsOpen(srv, tok) {
  const ws = new WebSocket(`ws://127.0.0.1:${srv.devPort}/v1/ws?token=${tok}`);
  ws.msgs = [];
  ws.on('message', (d, bin) => { if (!bin) ws.msgs.push(JSON.parse(d)); });
  ws.closedP = new Promise((r) => ws.on('close', (code) => r(code)));
  ws.on('error', () => {});
  return new Promise((resolve, reject) => { ws.once('open', () => resolve(ws)); ws.once('unexpected-response', () => reject(new Error('refused'))); });
}

async function until(cond, ms = 8000, what = 'condition') {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what} not met in time`);
    await h.sleep(25);
  }
}

async function devInfo(srv, id) {
  const r = await fetch(`${srv.api}/v1/devices/${id}`, { headers: { authorization: `Bearer ${h.KEY}` } });
  return r.json();
}

function revoke(srv, id, { key = h.KEY, method = 'DELETE' } = {}) {
  return fetch(`${srv.api}/v1/devices/${id}/tokens`, {
    method, headers: key ? { authorization: `Bearer ${key}` } : {},
  }).then(async (r) => ({ status: r.status, headers: r.headers, json: await r.json() }));
}

// A raw TCP HELLO's answer code.
async function helloRet(srv, tok) {
  const d = new h.TcpDevice(srv.devPort);
  await d.connected;
  try { return (await d.hello(tok)).ret; } finally { d.destroy(); }
}

test('token lifetime: longer than token-max-ttl is refused with ERR_TOKEN_TOO_LONG (1021)', async (t) => {
  const srv = await h.startServe(t, ['--admin-port', '0']);
  const now = Math.floor(Date.now() / 1000), day = 86400;
  // herald token mints what it is told; the server decides.
  const long = h.token('life-a', { ttl: 31 * day });
  const r1 = await wsTry(srv, long);
  assert.equal(r1.status, 401);
  assert.equal(r1.body.code, 1021);
  assert.equal(r1.body.error, 'token_too_long');
  assert.equal(await helloRet(srv, long), 1021);
  for (const tok of [mint('life-b', { iat: now, exp: now + 100 * 365 * day }),
    mint('life-c', { iat: null, exp: '9223372036854775807' }),
    mint('life-d', { iat: now, exp: '9223372036854775807' })]) {
    assert.equal(await helloRet(srv, tok), 1021, tok);
  }
  assert.equal(await wsTry(srv, h.token('life-e', { ttl: 30 * day })), 'open');
  assert.equal(await wsTry(srv, mint('life-f', { iat: null, exp: now + 3600 })), 'open');
  // A lower maximum, and the same token is refused.
  const short = await h.startServe(t, ['--admin-port', '0', '--token-max-ttl', '3600']);
  assert.equal((await wsTry(short, h.token('life-g', { ttl: 7200 }))).body.code, 1021);
  assert.equal(await wsTry(short, h.token('life-g', { ttl: 3600 })), 'open');
});

test('DELETE /v1/devices/{id}/tokens: old tokens refused, the connection kicked, new ones work, a restart keeps it', async (t) => {
  const db = path.join(DIR, 'revoke-api.db');
  let srv = await h.startServe(t, ['--db', db, '--admin-port', '0']);
  const id = `rv-${process.pid}`;
  const old = mint(id, { iat: Math.floor(Date.now() / 1000) - 5 });
  const ws = await wsOpen(srv, old);
  await until(async () => (await devInfo(srv, id)).online, 5000, 'online');
  const r = await revoke(srv, id);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.deviceId, id);
  assert.equal(r.json.online, true);
  const before = r.json.revokedBefore;
  assert.ok(Math.abs(before - Date.now() / 1000) < 5, String(before));
  await ws.closedP;
  const kick = ws.msgs.find((m) => m.cmd === 'kick');
  assert.ok(kick, JSON.stringify(ws.msgs));
  assert.equal(kick.reason, 1022);
  const again = await wsTry(srv, old);
  assert.equal(again.status, 401);
  assert.equal(again.body.code, 1022);
  assert.equal(again.body.error, 'token_revoked');
  assert.equal(await helloRet(srv, old), 1022);
  // First-form tokens count as issued token-max-ttl before their expiry.
  assert.equal(await helloRet(srv, mint(id, { iat: null })), 1022);
  // Minted at or after the moment: fine.
  assert.equal(await wsTry(srv, mint(id, { iat: before })), 'open');
  assert.equal(await wsTry(srv, mint('other-dev', { iat: before - 60 })), 'open');
  // Wrong method, no key.
  const get = await revoke(srv, id, { method: 'GET' });
  assert.equal(get.status, 405);
  assert.equal(get.headers.get('allow'), 'DELETE');
  assert.equal((await revoke(srv, id, { key: null })).status, 401);
  assert.equal((await revoke(srv, 'bad%20id')).status, 404);
  // Durable: a restart on the same store still refuses the old token.
  await srv.stop();
  srv = await h.startServe(t, ['--db', db, '--admin-port', '0']);
  assert.equal((await wsTry(srv, old)).body.code, 1022);
  assert.equal(await wsTry(srv, mint(id, { iat: before })), 'open');
});

test('herald device revoke beside a running server: applied within seconds, the device kicked', async (t) => {
  const db = path.join(DIR, 'revoke-cli.db');
  const srv = await h.startServe(t, ['--db', db, '--admin-port', '0']);
  const id = `rvcli-${process.pid}`;
  const old = mint(id, { iat: Math.floor(Date.now() / 1000) - 5 });
  const ws = await wsOpen(srv, old);
  await until(async () => (await devInfo(srv, id)).online, 5000, 'online');
  const r = herald(['device', 'revoke', 'test', id, '--db', db]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /tokens issued before .* are revoked/);
  const t0 = Date.now();
  await Promise.race([ws.closedP, h.sleep(5000)]);
  assert.ok(ws.msgs.some((m) => m.cmd === 'kick' && m.reason === 1022), JSON.stringify(ws.msgs));
  assert.ok(Date.now() - t0 < 5000);
  assert.equal((await wsTry(srv, old)).body.code, 1022);
  // Bad names are usage errors, nothing written.
  assert.equal(herald(['device', 'revoke', 'test', 'bad id', '--db', db]).code, 2);
  assert.equal(herald(['device', 'revoke', 'my.app', id, '--db', db]).code, 2);
});

test('failed logins: logged with the address, at most one line a second, counted by reason', async (t) => {
  const srv = await h.startServe(t, ['--admin-port', '0', '--log-level', 'info']);
  const admin = /admin (http:\/\/[^\s]+)/.exec(srv.stdout())[1];
  const forged = mint('fl', { secret: 'not-the-secret' });
  for (let i = 0; i < 20; i++) assert.equal((await wsTry(srv, forged)).status, 401);
  const lines = () => srv.stderr().split('\n').filter((l) => l.includes('device login refused'));
  await until(() => lines().length >= 1, 3000, 'a log line');
  assert.ok(lines().length <= 2, lines().join('\n'));
  assert.match(lines()[0], /reason=bad_token addr=127\.0\.0\.1:\d+/);
  assert.ok(!srv.stderr().includes(forged.split('.').pop()), 'no token in the log');
  await h.sleep(1100);
  assert.equal((await wsTry(srv, mint('fl2', { iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 40 * 86400 }))).status, 401);
  await until(() => lines().some((l) => /suppressed=\d+/.test(l)), 3000, 'the held-back count');
  const last = lines().pop();
  assert.match(last, /reason=token_too_long addr=127\.0\.0\.1:\d+ app=test device=fl2/);
  const m = await (await fetch(`${admin}/metrics`)).text();
  assert.match(m, /herald_auth_failures_total\{reason="bad_token"\} 20\b/);
  assert.match(m, /herald_auth_failures_total\{reason="token_too_long"\} 1\b/);
});

test('secrets out of ps: --app-file (not readable by others) and $HERALD_APP', async (t) => {
  const help = herald(['serve', '--help']).out;
  assert.match(help, /--app-file PATH/);
  assert.match(help, /HERALD_APP/);
  assert.match(help, /ps/);
  const f = path.join(DIR, 'apps');
  fs.writeFileSync(f, '# apps\n\nfileapp:FileSecret1:FileKey1\n  envless:S2:K2  \n');
  fs.chmodSync(f, 0o644);
  const loose = herald(['serve', '--app-file', f, '--db', path.join(DIR, 'af.db'), '--port', '0',
    '--api-port', '0', '--tars-port', '-1', '--admin-port', '0']);
  assert.equal(loose.code, 2, loose.err);
  assert.match(loose.err, /readable or writable by others/);
  assert.ok(!loose.err.includes('FileSecret1'));
  fs.chmodSync(f, 0o600);
  const srv = await h.startServe(t, ['--app-file', f, '--admin-port', '0'],
    { env: { HERALD_APP: 'envapp:EnvSecret1:EnvKey1' } });
  for (const key of ['FileKey1', 'K2', 'EnvKey1']) {
    const r = await h.push(srv, { deviceId: 'd1', payload: 'x' }, { key });
    assert.equal(r.status, 200, `${key}: ${JSON.stringify(r.json)}`);
  }
  assert.equal(await wsTry(srv, mint('fd', { app: 'fileapp', secret: 'FileSecret1' })), 'open');
  // A bad line names the file and line, never the value.
  fs.writeFileSync(f, 'ok:S:K\nbad.name:HiddenSecret:K9\n');
  const bad = herald(['serve', '--app-file', f, '--db', path.join(DIR, 'af2.db'), '--port', '0',
    '--api-port', '0', '--tars-port', '-1', '--admin-port', '0']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /apps:2: app:/);
  assert.ok(!bad.err.includes('HiddenSecret'));
});
