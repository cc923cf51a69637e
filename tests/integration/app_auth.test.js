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
