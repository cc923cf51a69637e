'use strict';
// bench/push_load.c, the push-API load generator, against a real `herald
// serve`: short paced runs (a few hundred pushes) over HTTP and TARS with
// the target devices online, checking that its accounting adds up (every
// push answered "written" delivered once, to its own device), that pushes
// stored by an earlier run are acked as stale instead of being counted,
// and that a refused API key fails the run with the server's answer.  It
// must never print the API key or the app secret.
//
//   HERALD_BUILD=build NODE_PATH=$PWD/tests/js/node_modules \
//     node --test tests/integration/push_load.test.js
const test = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const path = require('node:path');
const h = require('./helpers');

const TOOL = path.join(h.BUILD, 'bench', 'push_load');
const APP = 'pl';
const SECRET = 'PlSecretProbe5c2e9a7d1f3b8e6c4a0d';
const KEY = 'PlApiKeyProbe8d1b6f3a9e2c7d5b0f4a';

function run(args, ms = 20000) {
  return new Promise((resolve) => {
    const p = spawn(TOOL, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    h.live.add(p);
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), ms);
    p.on('exit', (code) => {
      clearTimeout(timer);
      h.live.delete(p);
      resolve({ code, out });
    });
  });
}

function num(out, re) {
  const m = re.exec(out);
  assert.ok(m, `${re} not in:\n${out}`);
  return Number(m[1]);
}

function noSecrets(out) {
  assert.ok(!out.includes(KEY), 'the API key was printed');
  assert.ok(!out.includes(SECRET), 'the app secret was printed');
}

async function server(t) {
  const srv = await h.startServe(t, ['--app', `${APP}:${SECRET}:${KEY}`]);
  srv.apiPort = Number(new URL(srv.api).port);
  return srv;
}

// A short paced run: 300 pushes/s for 1 s over 4 connections to 20 devices.
function load(srv, proto, extra = []) {
  const port = proto === 'tars' ? srv.tarsPort : srv.apiPort;
  return run([`--${proto}`, `127.0.0.1:${port}`, '--key', KEY, '--conns', '4',
    '--devices', '20', '--device-prefix', 'pl-', '--secs', '1', '--warmup', '0',
    '--rate', '300', ...extra]);
}

function online(srv) {
  return ['--online', '--gw', `127.0.0.1:${srv.devPort}`, '--app', APP,
    '--secret', SECRET];
}

for (const proto of ['http', 'tars']) {
  test(`${proto}: every push answered "written" reaches its own device once`, async (t) => {
    const srv = await server(t);
    const r = await load(srv, proto, online(srv));
    noSecrets(r.out);
    assert.strictEqual(r.code, 0, r.out);
    assert.match(r.out, /devices: 20\/20 online/);
    const ok = num(r.out, /online: (\d+) pushes OK/);
    assert.ok(ok >= 150, `only ${ok} pushes in 1 s at 300/s:\n${r.out}`);
    assert.strictEqual(num(r.out, /\((\d+) written/), ok, r.out);
    assert.strictEqual(num(r.out, /delivered (\d+) \(per device/), ok, r.out);
    assert.match(r.out, /missing 0, wrong 0, dup 0;/);
    const rate = num(r.out, new RegExp(`^push_load ${proto}: (\\d+) pushes/s`, 'm'));
    assert.ok(rate > 100 && rate < 400, r.out);
    assert.match(r.out, /errors 0, server n\/a, client [\d.]+ us CPU\/push, online 20,/);
  });
}

test('pushes stored by an earlier run are acked as stale, not counted', async (t) => {
  const srv = await server(t);
  const off = await load(srv, 'http', ['--pid', String(srv.proc.pid)]);
  noSecrets(off.out);
  assert.strictEqual(off.code, 0, off.out);
  assert.match(off.out, /server [\d.]+ us CPU\/push/);
  const stored = num(off.out, /in all \d+ sent, (\d+) OK, 0 errors/);
  assert.ok(stored > 0, off.out);
  const on = await load(srv, 'http', online(srv));
  assert.strictEqual(on.code, 0, on.out);
  assert.strictEqual(num(on.out, /(\d+) stale pushes of earlier runs acked\n(?!.*stale)/s), stored, on.out);
  assert.match(on.out, /missing 0, wrong 0, dup 0;/);
});

test('a refused API key fails the run and prints the answer', async (t) => {
  const srv = await server(t);
  const r = await run(['--http', `127.0.0.1:${srv.apiPort}`, '--key', 'NotTheKey',
    '--conns', '1', '--secs', '1', '--warmup', '0', '--rate', '20']);
  noSecrets(r.out);
  assert.strictEqual(r.code, 1, r.out);
  assert.match(r.out, /first error \(thread 0\): HTTP 401: \{"error"/);
  assert.match(r.out, /push_load http: 0 pushes\/s, .*errors [1-9]/);
});
