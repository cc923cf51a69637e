'use strict';
// Codec interop, both directions, between herald's generated C and the
// independent @tars/stream implementation, for every struct of every
// contract file (build/gen/*.schema.json, plus test IDL in build/gen-test).
//
// Per random value v of struct S:
//   1. JS encodes v (tars2node style: every field written)      -> jsHex
//   2. C `dec S jsHex`: decode, re-encode with the JS policy     == jsHex
//   3. C `jsonjs S json(v)`: from_json, JS policy                 == jsHex
//   4. C `json S json(v)`: from_json, C++ policy -> cppHex; JS decodes
//      cppHex to a value equal to v (absent optional fields = defaults;
//      an optional float within epsilon of its default reads back as the
//      default, as with tars2cpp)
//   5. C `enc S jsHex`: decode, C++ policy                         == cppHex
//   6. C `tojson S jsHex` parses to a value equal to v
// HERALD_SEED=n reproduces a run; HERALD_INTEROP_N sets values per struct.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const { spawn } = require('node:child_process');
const readline = require('node:readline');

const model = require('./lib/jce_model');
const { Generator, hashSeed } = require('./lib/gen');

const ROOT = path.resolve(__dirname, '..', '..');
const BUILD = path.resolve(ROOT, process.env.HERALD_BUILD || 'build');
const N = Number(process.env.HERALD_INTEROP_N || 1000);
const SEED = process.env.HERALD_SEED !== undefined
  ? Number(process.env.HERALD_SEED) >>> 0
  : (Date.now() ^ (process.pid << 16)) >>> 0;
const BATCH = 100;

// One long-lived jce_interop process; answers come back in request order.
class CPeer {
  constructor(bin) {
    this.proc = spawn(bin, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.waiting = [];
    this.dead = null;
    readline.createInterface({ input: this.proc.stdout, crlfDelay: Infinity })
      .on('line', (line) => {
        const w = this.waiting.shift();
        if (w) w.resolve(line);
      });
    this.exitCode = null;
    this.proc.on('exit', (code, sig) => {
      this.exitCode = code === null ? `signal ${sig}` : code;
      this.dead = new Error(`jce_interop exited (code ${code}, signal ${sig})`);
      for (const w of this.waiting.splice(0)) w.reject(this.dead);
    });
    this.proc.stdin.on('error', () => {});
  }

  call(line) {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.proc.stdin.write(line + '\n');
    });
  }

  // Resolves to the exit status: non-zero after a clean EOF means a
  // sanitizer (leak) report or a crash.
  close() {
    this.proc.stdin.end();
    return new Promise((resolve) => {
      if (this.dead) resolve(this.exitCode);
      else this.proc.on('exit', () => resolve(this.exitCode));
    });
  }
}

function ok(answer, what) {
  if (!answer.startsWith('ok ')) throw new Error(`${what}: C answered "${answer.slice(0, 200)}"`);
  return answer.slice(3);
}

function short(s, n = 400) {
  return s.length > n ? `${s.slice(0, n)}... (${s.length} chars)` : s;
}

function show(v) {
  return short(JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? `${x}n` : x)));
}

// Runs checks 1-6 on one value; returns null or a description of the
// first mismatch.
async function checkOne(peer, js, reg, name, v) {
  const jsHex = js.encode(name, v).toString('hex');
  const json = model.jsonText(reg, { struct: name }, v);
  const [dec, jsonjs, cpp, enc, tojson] = await Promise.all([
    peer.call(`dec ${name} ${jsHex}`),
    peer.call(`jsonjs ${name} ${json}`),
    peer.call(`json ${name} ${json}`),
    peer.call(`enc ${name} ${jsHex}`),
    peer.call(`tojson ${name} ${jsHex}`),
  ]);
  try {
    assert.deepStrictEqual(js.decode(name, Buffer.from(jsHex, 'hex')), v,
      'JS model does not round-trip through @tars/stream');
    assert.equal(ok(dec, 'dec'), jsHex, 'C decode + JS-policy encode differs from JS bytes');
    assert.equal(ok(jsonjs, 'jsonjs'), jsHex, 'C from_json + JS-policy encode differs from JS bytes');
    const cppHex = ok(cpp, 'json');
    assert.deepStrictEqual(js.decode(name, Buffer.from(cppHex, 'hex')),
      model.cppExpect(reg, { struct: name }, v),
      'JS decode of C++-policy bytes differs from the value');
    assert.equal(ok(enc, 'enc'), cppHex, 'C decode + C++-policy encode differs from from_json + C++ policy');
    assert.deepStrictEqual(
      model.fromJson(reg, { struct: name }, model.parseJsonExact(ok(tojson, 'tojson'))), v,
      'C to_json of JS bytes differs from the value');
    return null;
  } catch (e) {
    return `${e.message}\n  value: ${show(v)}\n  js hex: ${short(jsHex)}\n` +
      `  json: ${short(json)}\n  C dec: ${short(dec)}\n  C json: ${short(cpp)}\n` +
      `  C tojson: ${short(tojson)}`;
  }
}

// Cut JS bytes short at random points: C must answer every line with a
// value or an "err CODE POS" whose position lies inside the input, and stay
// alive (the fuzz targets do this at scale; here the inputs are realistic).
async function truncations(peer, js, gen, name) {
  const lines = [];
  for (let i = 0; i < 20; i++) {
    const buf = js.encode(name, gen.struct(name));
    if (buf.length < 2) continue;
    const cut = 1 + (gen.r.u32() % (buf.length - 1));
    lines.push([cut, buf.subarray(0, cut).toString('hex')]);
  }
  const answers = await Promise.all(lines.map(([, hex]) => peer.call(`dec ${name} ${hex}`)));
  answers.forEach((a, i) => {
    const m = /^err (-\d+) (\d+)$/.exec(a);
    assert.ok(a.startsWith('ok ') || (m && Number(m[2]) <= lines[i][0]),
      `truncated input (${lines[i][0]} bytes) answered "${short(a)}"`);
  });
}

const genDirs = [path.join(BUILD, 'gen'), path.join(BUILD, 'gen-test')];
const reg = model.loadSchemas(genDirs);
const bin = path.join(BUILD, 'tests', 'jce_interop');
const names = [...reg.structs.keys()].sort();

test('codec interop setup: schemas and jce_interop present', (t) => {
  t.diagnostic(`seed ${SEED} (HERALD_SEED=${SEED} reproduces), ${N} values per struct`);
  for (const f of ['PushAPI', 'Protocol'])
    assert.ok(reg.files.includes(f), `${f}.schema.json not found in ${genDirs[0]}`);
  assert.ok(fs.existsSync(bin), `${bin} not built`);
});

test(`codec interop: ${names.length} structs x ${N} random values, JS<->C`, async (t) => {
  assert.ok(names.length > 0, 'no structs in any schema');
  assert.ok(fs.existsSync(bin), `${bin} not built`);
  const peer = new CPeer(bin);
  const js = new model.TarsTypes(reg);
  let closed = false;
  try {
    const known = new Set(ok(await peer.call('types'), 'types').split(' '));
    for (const name of names) {
      await t.test(`${name}: ${N} values both directions`, async () => {
        assert.ok(known.has(name), `C type tables lack ${name}`);
        const gen = new Generator(reg, hashSeed(SEED, name));
        const failures = [];
        let failed = 0;
        for (let i = 0; i < N; i += BATCH) {
          const vals = [];
          for (let j = i; j < Math.min(N, i + BATCH); j++) vals.push(gen.struct(name));
          const res = await Promise.all(vals.map((v) => checkOne(peer, js, reg, name, v)));
          for (const r of res) {
            if (!r) continue;
            failed++;
            if (failures.length < 3) failures.push(r);
          }
        }
        assert.equal(failed, 0,
          `${failed}/${N} values failed (seed ${SEED}); first:\n${failures.join('\n')}`);
        await truncations(peer, js, gen, name);
      });
    }
    closed = true;
    assert.equal(await peer.close(), 0, 'jce_interop exit status');
  } finally {
    if (!closed) await peer.close();
  }
});
