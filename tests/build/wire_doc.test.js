'use strict';
// docs/wire.md's byte examples against the real encoders, so the page
// cannot drift from what herald sends:
//  * ```wire blocks: each `Name {json}` line is encoded by herald's
//    generated C encoder (BUILD/tests/jce_interop, `json herald.Name`, the
//    C++ policy the gateway writes with) and must equal the hex lines under
//    it; each `frame cmd=.. [reqId=..] [ret=..]` line is a Package carrying
//    the struct above it (if any) as its body, behind the 4-byte length;
//    `preface` is "YYB" + PROTOCOL_VERSION as u32be;
//  * ```jce blocks: `writeX(tag, value)  HEX` lines are run through
//    @tars/stream's TarsOutputStream, an independent TARS encoder.
// A hex line is hex pairs separated by single spaces; two or more spaces
// start its comment.  A line that fits neither form fails the test, so a
// typo cannot hide an example from it.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const BUILD = path.resolve(ROOT, process.env.HERALD_BUILD || 'build');
const DOC = path.join(ROOT, 'docs', 'wire.md');
const INTEROP = path.join(BUILD, 'tests', 'jce_interop');

// Fenced blocks of docs/wire.md with the given info string: {line, text}.
function blocks(md, info) {
  const out = [];
  const lines = md.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```' + info) continue;
    const start = i + 1;
    const body = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]);
    out.push({ line: start + 1, lines: body });
  }
  return out;
}

// The hex part of a line: pairs separated by single spaces, before a
// comment that starts after 2+ spaces.  null if the line is not hex.
function hexOf(line) {
  const h = line.trim().split(/\s{2,}/)[0];
  return /^[0-9a-f]{2}( [0-9a-f]{2})*$/.test(h) ? h.replace(/ /g, '') : null;
}

// Runs `json TYPE JSON` lines through one jce_interop process.
function encodeAll(reqs) {
  if (!reqs.length) return [];
  const input = reqs.map((r) => `json ${r.type} ${JSON.stringify(r.value)}`).join('\n') + '\n';
  const out = execFileSync(INTEROP, { input, encoding: 'utf8' }).split('\n');
  return reqs.map((r, i) => {
    const m = /^ok ?([0-9a-f]*)$/.exec(out[i] || '');
    assert.ok(m, `jce_interop refused ${r.type} ${JSON.stringify(r.value)}: ${out[i]}`);
    return m[1];
  });
}

// Parses the wire blocks into examples: {where, kind, type?, value?, fields?, hex}.
function wireExamples(md) {
  const ex = [];
  for (const b of blocks(md, 'wire')) {
    let cur = null;
    let lastStruct = null;
    b.lines.forEach((l, k) => {
      const where = `docs/wire.md:${b.line + k}`;
      if (!l.trim()) return;
      let m;
      if (/^\s/.test(l)) {
        const h = hexOf(l);
        assert.ok(h !== null, `${where}: not a hex line: ${l}`);
        assert.ok(cur, `${where}: hex before any value`);
        cur.hex += h;
      } else if ((m = /^([A-Z][A-Za-z]*) (\{.*\})$/.exec(l))) {
        cur = { where, kind: 'struct', type: `herald.${m[1]}`, value: JSON.parse(m[2]), hex: '' };
        lastStruct = cur;
        ex.push(cur);
      } else if ((m = /^frame((?: [a-zA-Z]+=-?\d+)+)$/.exec(l))) {
        const fields = {};
        for (const kv of m[1].trim().split(' ')) {
          const [k2, v] = kv.split('=');
          fields[k2] = Number(v);
        }
        assert.ok('cmd' in fields, `${where}: a frame needs cmd=`);
        cur = { where, kind: 'frame', fields, body: lastStruct, hex: '' };
        lastStruct = null;
        ex.push(cur);
      } else if (l === 'preface') {
        cur = { where, kind: 'preface', hex: '' };
        ex.push(cur);
      } else {
        assert.fail(`${where}: neither a value, a frame nor hex: ${l}`);
      }
    });
  }
  return ex;
}

test('docs/wire.md: every wire example is what herald\'s encoder writes', () => {
  assert.ok(fs.existsSync(INTEROP), `${INTEROP} missing: run make`);
  const md = fs.readFileSync(DOC, 'utf8');
  const ex = wireExamples(md);
  const structs = ex.filter((e) => e.kind === 'struct');
  const frames = ex.filter((e) => e.kind === 'frame');
  assert.ok(structs.length >= 15 && frames.length >= 17, `${structs.length} structs, ${frames.length} frames found`);
  for (const e of ex) assert.ok(e.hex.length > 0 || (e.kind === 'struct' && e.hex === ''), `${e.where}: no bytes shown`);

  const got = encodeAll(structs);
  structs.forEach((e, i) => { e.actual = got[i]; });
  for (const e of structs) assert.equal(e.hex, e.actual, `${e.where}: ${e.type} ${JSON.stringify(e.value)}`);

  const pk = frames.map((f) => {
    const v = { ...f.fields };
    if (f.body && f.body.actual) v.body = Buffer.from(f.body.actual, 'hex').toString('base64');
    return { type: 'herald.Package', value: v };
  });
  const pkHex = encodeAll(pk);
  frames.forEach((f, i) => {
    const len = pkHex[i].length / 2 + 4;
    const want = len.toString(16).padStart(8, '0') + pkHex[i];
    assert.equal(f.hex, want, `${f.where}: frame ${JSON.stringify(f.fields)}${f.body ? ` with ${f.body.type}` : ''}`);
  });

  // Every command and every struct of Protocol.jce has an example (Package
  // is in every frame, PushMsg inside PushBatch); the preface carries
  // PROTOCOL_VERSION.
  const schema = JSON.parse(fs.readFileSync(path.join(BUILD, 'gen', 'Protocol.schema.json'), 'utf8'));
  const mod = schema.modules.find((m) => m.name === 'herald');
  const cmds = mod.enums.find((e) => e.name === 'Cmd').values;
  const shown = new Set(frames.map((f) => f.fields.cmd));
  for (const [name, v] of Object.entries(cmds)) assert.ok(shown.has(v), `no frame example for ${name} (${v})`);
  const types = new Set(structs.map((e) => e.type));
  for (const st of mod.structs) {
    if (st.name === 'Package' || st.name === 'PushMsg') continue;
    assert.ok(types.has(`herald.${st.name}`), `no example of ${st.name}`);
  }
  const version = mod.consts.find((c) => c.name === 'PROTOCOL_VERSION').value;
  const pre = ex.filter((e) => e.kind === 'preface');
  assert.equal(pre.length, 1, 'one preface example');
  const want = Buffer.alloc(7);
  want.write('YYB');
  want.writeUInt32BE(version, 3);
  assert.equal(pre[0].hex, want.toString('hex'), pre[0].where);
});

test('docs/wire.md: every jce example is what @tars/stream writes', () => {
  const Tars = require('@tars/stream');
  const md = fs.readFileSync(DOC, 'utf8');
  let n = 0;
  for (const b of blocks(md, 'jce')) {
    b.lines.forEach((l, k) => {
      const where = `docs/wire.md:${b.line + k}`;
      if (!l.trim()) return;
      const m = /^(write[A-Za-z0-9]+)\((\d+), (.*)\)\s{2,}(.*)$/.exec(l);
      assert.ok(m, `${where}: not a writeX(tag, value)  HEX line: ${l}`);
      const [, fn, tag, arg, hexPart] = m;
      const want = hexOf(hexPart);
      assert.ok(want !== null, `${where}: bad hex: ${hexPart}`);
      const os = new Tars.TarsOutputStream();
      if (fn === 'writeBytes') {
        const raw = arg === '""' ? Buffer.alloc(0) : Buffer.from(arg, 'hex');
        os.writeBytes(Number(tag), new Tars.BinBuffer(raw));
      } else {
        assert.equal(typeof os[fn], 'function', `${where}: @tars/stream has no ${fn}`);
        os[fn](Number(tag), JSON.parse(arg));
      }
      assert.equal(os.getBinBuffer().toNodeBuffer().toString('hex'), want, `${where}: ${fn}(${tag}, ${arg})`);
      n++;
    });
  }
  assert.ok(n >= 15, `${n} jce examples found`);
});
