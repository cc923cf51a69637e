'use strict';
// Shared by the integration tests: start/stop a real `herald serve` on free
// ports, mint tokens with `herald token`, push through the HTTP API, and
// speak the raw TCP protocol with @tars/stream (via the interop model built
// from jce2c's schema files, so the Package layout comes from the IDL).
//
// Every process started here is killed when its test ends (t.after), and a
// process-exit hook kills any stragglers, so no test leaves herald behind.

const { spawn, execFileSync } = require('node:child_process');
const net = require('node:net');
const path = require('node:path');
const fs = require('node:fs');

const ROOT = path.resolve(__dirname, '..', '..');
const BUILD = path.resolve(ROOT, process.env.HERALD_BUILD || 'build');
const HERALD = path.join(BUILD, 'herald');
const { loadSchemas, TarsTypes, defaultStruct } =
  require('../interop/lib/jce_model');

const live = new Set();
process.on('exit', () => { for (const p of live) try { p.kill('SIGKILL'); } catch (_) {} });

const SECRET = 'SECRET';
const KEY = 'KEY';

// Starts `herald serve` on ports chosen by the kernel and waits until it
// prints both.  extra: more flags; opts.env: more environment variables.
// Registers its stop with t.after.
// Each server gets its own SQLite file in a fresh temp folder unless extra
// names one (--db), so tests never share state.
async function startServe(t, extra = [], opts = {}) {
  const os = require('node:os');
  const db = extra.includes('--db') ? null
    : path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'herald-it-')), 'herald.db');
  const args = ['serve', '--port', '0', '--api-port', '0', '--host', '127.0.0.1',
    '--tars-port', '0', ...(db ? ['--db', db] : []),
    '--app', `test:${SECRET}:${KEY}`, '--log-level', 'warn', ...extra];
  const cmd = opts.nofile ? ['sh', ['-c', `ulimit -n ${Number(opts.nofile)} && exec "$0" "$@"`, HERALD, ...args]]
    : [HERALD, args];
  const proc = spawn(cmd[0], cmd[1], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(opts.env || {}) },
  });
  live.add(proc);
  let out = '', err = '';
  proc.stderr.on('data', (d) => { err += d; });
  const srv = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 10000);
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`serve exited ${code}: ${err}`)); });
    proc.stdout.on('data', (d) => {
      out += d;
      const dev = /device port (\d+)/.exec(out);
      const api = /push API (http:\/\/[^\s]+)/.exec(out);
      const tars = /push TARS tcp:\/\/[^\s:]+:(\d+)/.exec(out);
      if (dev && api) {
        clearTimeout(timer);
        resolve({ devPort: Number(dev[1]), api: api[1], tarsPort: tars ? Number(tars[1]) : null, db });
      }
    });
  });
  srv.proc = proc;
  srv.stderr = () => err;
  srv.stdout = () => out; // everything serve printed on stdout so far
  srv.stop = () => new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode) { live.delete(proc); return resolve(); }
    proc.once('exit', () => { live.delete(proc); resolve(); });
    proc.kill('SIGTERM');
    setTimeout(() => proc.kill('SIGKILL'), 5000).unref();
  });
  if (t) t.after(srv.stop);
  return srv;
}

// `herald serve --help` mentions the flag?
function serveHas(flag) {
  try {
    return execFileSync(HERALD, ['serve', '--help'], { encoding: 'utf8' }).includes(flag);
  } catch (e) {
    return String(e.stdout || '').includes(flag);
  }
}

function token(device, { ttl, secret = SECRET, app = 'test' } = {}) {
  const args = ['token', '--app', app, '--device', device, '--secret', secret];
  if (ttl !== undefined) args.push('--ttl', String(ttl));
  return execFileSync(HERALD, args, { encoding: 'utf8' }).trim();
}

// Forges an already expired but correctly signed token: the C side's own
// format (token.h), computed here independently with node:crypto.
function expiredToken(device, secret = SECRET, app = 'test') {
  const crypto = require('node:crypto');
  const signed = `${app}.${device}.${Math.floor(Date.now() / 1000) - 60}`;
  const sig = crypto.createHmac('sha256', secret).update(signed).digest('base64url');
  return `${signed}.${sig}`;
}

async function push(srv, body, { path: p = '/v1/push/device', key = KEY } = {}) {
  const res = await fetch(`${srv.api}${p}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

// ---- JCE over raw TCP -------------------------------------------------------

let jsTypes;
function types() {
  if (!jsTypes) jsTypes = new TarsTypes(loadSchemas([path.join(BUILD, 'gen')]));
  return jsTypes;
}

// A whole struct value: IDL defaults overlaid with the given fields.
function full(name, fields) {
  return { ...defaultStruct(types().reg, `herald.${name}`), ...fields };
}

function enc(name, fields) {
  return types().encode(`herald.${name}`, { ...defaultStruct(types().reg, `herald.${name}`), ...fields });
}
function dec(name, buf) { return types().decode(`herald.${name}`, buf); }

function frame(pkgFields) {
  const body = enc('Package', pkgFields);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length + 4);
  return Buffer.concat([len, body]);
}

function preface(version = 1) {
  const b = Buffer.alloc(7);
  b.write('YYB', 0, 'latin1');
  b.writeUInt32BE(version, 3);
  return b;
}

const CMD = { HELLO: 1, HEARTBEAT: 2, PUSH: 3, ACK: 4, KICK: 8, BYE: 9 };

// A raw TCP device: collects decoded Packages; waitFor(pred) resolves with
// the first one matching; `closed` resolves when the server closes.
// localAddress: connect from another loopback address (127.0.0.2, ...).
class TcpDevice {
  constructor(port, { localAddress } = {}) {
    this.sock = net.connect({ port, host: '127.0.0.1', localAddress });
    this.buf = Buffer.alloc(0);
    this.pkgs = [];
    this.waiters = [];
    this.closedAt = null;
    this.closed = new Promise((resolve) => {
      this.sock.on('close', () => { this.closedAt = Date.now(); resolve(); this._wake(); });
    });
    this.sock.on('error', () => {});
    this.sock.on('data', (d) => this._data(d));
    this.connected = new Promise((resolve) => this.sock.once('connect', resolve));
  }
  _data(d) {
    this.buf = Buffer.concat([this.buf, d]);
    while (this.buf.length >= 4) {
      const n = this.buf.readUInt32BE(0);
      if (this.buf.length < n) break;
      const p = dec('Package', this.buf.subarray(4, n));
      this.buf = this.buf.subarray(n);
      this.pkgs.push(p);
    }
    this._wake();
  }
  _wake() {
    for (const w of this.waiters.splice(0)) w();
  }
  write(b) { this.sock.write(b); }
  send(cmd, bodyName, body, reqId = 0) {
    this.write(frame({ cmd, reqId, body: bodyName ? enc(bodyName, body) : Buffer.alloc(0) }));
  }
  async hello(tok, heartbeat = 60) {
    this.write(preface());
    this.send(CMD.HELLO, 'HelloReq', { token: tok, heartbeat }, 1);
    return this.waitFor((p) => p.cmd === CMD.HELLO);
  }
  waitFor(pred, ms = 5000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timeout waiting for a package')), ms);
      const check = () => {
        const i = this.pkgs.findIndex(pred);
        if (i >= 0) { clearTimeout(timer); resolve(this.pkgs.splice(i, 1)[0]); return; }
        if (this.closedAt) { clearTimeout(timer); reject(new Error('closed')); return; }
        this.waiters.push(check);
      };
      check();
    });
  }
  async waitClosed(ms = 5000) {
    let timer;
    await Promise.race([this.closed, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error('not closed')), ms); })]);
    clearTimeout(timer);
  }
  destroy() { this.sock.destroy(); }
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

// A loopback port free now (for a port a test must know before starting
// the server: the admin port, fixed ports across restarts).
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

module.exports = {
  BUILD, HERALD, SECRET, KEY, CMD, startServe, serveHas, token, expiredToken, push,
  enc, dec, full, frame, preface, TcpDevice, sleep, live, freePort,
};
