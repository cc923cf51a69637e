'use strict';
// Seeded random values for every schema type, biased towards the cases
// that break codecs: integer edges where the wire width changes, empty
// and >255-byte strings (String1 vs String4), empty and large containers,
// nested structs.  The same seed always gives the same values.

const { kind, INT_RANGE, keyCompare } = require('./jce_model');

// sfc32: small, fast, good enough for test data, and reproducible.
function prng(seed) {
  let a = 0x9e3779b9, b = 0x243f6a88, c = 0xb7e15162, d = seed >>> 0;
  const next = () => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
    const t = (a + b + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t >>> 0;
  };
  for (let i = 0; i < 16; i++) next();
  const r = {
    u32: next,
    float: () => next() / 4294967296,
    int: (n) => Math.floor((next() / 4294967296) * n), // 0..n-1
    chance: (p) => next() / 4294967296 < p,
    pick: (arr) => arr[Math.floor((next() / 4294967296) * arr.length)],
    // uniform BigInt in [lo, hi]
    big: (lo, hi) => {
      const span = hi - lo + 1n;
      let x = 0n;
      for (let i = 0; i < 3; i++) x = (x << 32n) | BigInt(next());
      return lo + (x % span);
    },
  };
  return r;
}

function hashSeed(seed, name) {
  let h = seed >>> 0;
  for (const ch of name) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  return h;
}

// Values where the encoder switches width (tars-wire §1.3), clipped to the
// type's range.
const EDGES = [0n, 1n, -1n, 127n, 128n, -128n, -129n, 255n, 256n, 32767n, 32768n,
  -32768n, -32769n, 65535n, 65536n, 2147483647n, 2147483648n, -2147483648n,
  -2147483649n, 4294967295n, 4294967296n, 2n ** 53n - 1n, -(2n ** 53n - 1n),
  2n ** 63n - 1n, -(2n ** 63n)];

function intValue(r, type) {
  const [lo, hi] = INT_RANGE[type];
  let v;
  if (r.chance(0.4)) {
    const edges = EDGES.filter((e) => e >= lo && e <= hi).concat([lo, hi]);
    v = r.pick(edges);
  } else if (r.chance(0.5)) {
    v = r.big(lo > -1000n ? lo : -1000n, hi < 1000n ? hi : 1000n);
  } else {
    v = r.big(lo, hi);
  }
  return type === 'long' ? v : Number(v);
}

// Exactly representable floats/doubles; no NaN, Inf or -0 (JSON cannot
// carry the first two, and -0 compares unequal to the 0 JS decodes).
function realValue(r, single) {
  const special = single
    ? [0, 1, -1, 1.5, 0.5, 3.4028234663852886e38, -3.4028234663852886e38,
      1.1754943508222875e-38, 1.401298464324817e-45, 16777216, -16777217]
    : [0, 1, -1, 1.5, 0.1, Number.MAX_VALUE, -Number.MAX_VALUE,
      Number.MIN_VALUE, 2.2250738585072014e-308, 2 ** 53, -(2 ** 60) + 0.5 * 2 ** 10];
  let v;
  if (r.chance(0.3)) v = r.pick(special);
  else if (r.chance(0.5)) v = (r.int(2000001) - 1000000) / 64;
  else v = (r.float() - 0.5) * 2 ** (r.int(200) - 100);
  if (single) v = Math.fround(v);
  return Object.is(v, -0) ? 0 : v;
}

// Code points from several UTF-8 widths; never NUL (C strings in JSON) and
// never a lone surrogate (not valid UTF-8).
function randomChar(r) {
  switch (r.int(6)) {
    case 0: case 1: case 2: return String.fromCharCode(0x20 + r.int(0x5f));
    case 3: return String.fromCharCode(1 + r.int(0x1f));
    case 4: return String.fromCharCode(0xa0 + r.int(0x700));
    default: return r.chance(0.5)
      ? String.fromCharCode(0x3000 + r.int(0x5000))
      : String.fromCodePoint(0x1f300 + r.int(0x300));
  }
}

function stringValue(r, minBytes, maxBytes) {
  const target = minBytes + r.int(maxBytes - minBytes + 1);
  let s = '';
  while (Buffer.byteLength(s) < target) s += randomChar(r);
  return s;
}

function stringOf(r) {
  const p = r.float();
  if (p < 0.15) return '';
  if (p < 0.25) return stringValue(r, 256, 700);   // String4
  if (p < 0.3) return stringValue(r, 250, 260);    // around the switch
  return stringValue(r, 1, 24);
}

function bytesOf(r, depth) {
  const p = r.float();
  let n;
  if (p < 0.2) n = 0;
  else if (p < 0.3 && depth < 2) n = 200 + r.int(3000);
  else n = 1 + r.int(40);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = r.int(256);
  return b;
}

function countOf(r, depth) {
  const p = r.float();
  if (p < 0.2 || depth > 6) return 0;
  if (depth >= 3) return r.int(2);
  if (p < 0.27 && depth < 2) return 100 + r.int(200);
  return 1 + r.int(depth ? 3 : 6);
}

class Generator {
  constructor(reg, seed) {
    this.reg = reg;
    this.r = prng(seed);
  }

  value(type, depth = 0) {
    const r = this.r;
    switch (kind(type)) {
      case 'bool': return r.chance(0.5);
      case 'int': case 'long': return intValue(r, type);
      case 'float': return realValue(r, true);
      case 'double': return realValue(r, false);
      case 'string': return stringOf(r);
      case 'bytes': return bytesOf(r, depth);
      case 'enum': {
        const vals = Object.values(this.reg.enums.get(type.enum) || { x: 0 });
        // Unknown enum values must pass through too: the wire is an int.
        return r.chance(0.9) ? r.pick(vals) : intValue(r, 'int');
      }
      case 'struct': return this.struct(type.struct, depth + 1);
      case 'vector': {
        const n = countOf(r, depth);
        const el = type.vector;
        // Large lists of structs cost more than they test.
        const lim = kind(el) === 'struct' || kind(el) === 'vector' || kind(el) === 'map' ? 8 : n;
        const out = [];
        for (let i = 0; i < Math.min(n, lim); i++) out.push(this.value(el, depth + 1));
        return out;
      }
      case 'map': return this.map(type, depth);
    }
    throw new Error('unreachable');
  }

  // Distinct keys, sorted in C++ order, and chosen so that JS object-key
  // order (integer-like keys first, ascending; others in insertion order)
  // equals that order: string keys never look like integers, and integer
  // keys are all negative or all non-negative.
  map(type, depth) {
    const r = this.r;
    const [kt, vt] = type.map;
    const n = Math.min(countOf(r, depth), kind(vt) === 'struct' ? 8 : 300);
    const kk = kind(kt);
    if (!['string', 'int', 'long', 'enum'].includes(kk))
      throw new Error(`map key type ${JSON.stringify(kt)} not supported by the JS peer`);
    const signed = kk === 'string' || kk === 'enum' || INT_RANGE[kt][0] < 0n;
    const negative = signed && r.chance(0.3);
    const keys = new Map();
    for (let tries = 0; keys.size < n && tries < n * 20; tries++) {
      let k;
      if (kk === 'string') {
        k = 'k' + Array.from(stringOf(r)).slice(0, r.chance(0.1) ? 400 : 12).join('');
        if (r.chance(0.05)) k = 'k' + 'x'.repeat(300 + r.int(10));
      } else {
        k = kk === 'enum' ? intValue(r, 'int') : intValue(r, kt);
        const isNeg = typeof k === 'bigint' ? k < 0n : k < 0;
        if (isNeg !== negative) continue;
      }
      keys.set(typeof k === 'bigint' ? `b${k}` : `${typeof k}:${k}`, k);
    }
    const sorted = [...keys.values()].sort(keyCompare(kt));
    return sorted.map((k) => [k, this.value(vt, depth + 1)]);
  }

  struct(name, depth = 0) {
    const s = this.reg.structs.get(name);
    const v = {};
    for (const f of s.fields) v[f.name] = this.value(f.type, depth);
    return v;
  }
}

module.exports = { prng, hashSeed, Generator };
