'use strict';
// jce_model: turns the X.schema.json files that jce2c writes into
// @tars/stream struct classes, random values, and JSON text for the C side.
//
// A value is modelled in plain JS so that both peers' outputs can be
// compared with deepStrictEqual:
//   bool -> boolean; byte..unsigned int, enum -> number; long -> BigInt;
//   float/double -> number; string -> string; vector<byte> -> Buffer;
//   vector<T> -> Array; map<K,V> -> Array of [k, v] in C++ key order;
//   struct -> plain object keyed by field name.
// Maps are kept as sorted pair lists because C++ (and herald's C) write
// keys in std::map order while JS writes object-key order (tars-wire §1.6);
// the generator only makes maps whose JS order equals the C++ order.

const fs = require('node:fs');
const path = require('node:path');
const Tars = require('@tars/stream');

// ---- schema -----------------------------------------------------------------

// Loads every *.schema.json under the given folders into one registry:
// structs and enums by full name "module.Name".
function loadSchemas(dirs) {
  const reg = { structs: new Map(), enums: new Map(), files: [] };
  for (const dir of dirs) {
    if (!fs.existsSync(dir)) continue;
    for (const f of fs.readdirSync(dir).sort()) {
      if (!f.endsWith('.schema.json')) continue;
      const doc = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
      reg.files.push(doc.file || f);
      for (const mod of doc.modules || []) {
        for (const e of mod.enums || [])
          reg.enums.set(`${mod.name}.${e.name}`, e.values || {});
        for (const s of mod.structs || [])
          reg.structs.set(`${mod.name}.${s.name}`,
            { name: `${mod.name}.${s.name}`, module: mod.name, file: doc.file,
              fields: [...s.fields].sort((a, b) => a.tag - b.tag) });
      }
    }
  }
  return reg;
}

// ---- type helpers -----------------------------------------------------------

const INT_RANGE = {
  byte: [-128n, 127n],
  'unsigned byte': [0n, 255n],
  short: [-32768n, 32767n],
  'unsigned short': [0n, 65535n],
  int: [-2147483648n, 2147483647n],
  'unsigned int': [0n, 4294967295n],
  long: [-(2n ** 63n), 2n ** 63n - 1n],
};

function kind(type) {
  if (typeof type === 'string') {
    if (type in INT_RANGE) return type === 'long' ? 'long' : 'int';
    return type; // bool float double string
  }
  if (type.vector !== undefined) return type.vector === 'byte' ? 'bytes' : 'vector';
  if (type.map !== undefined) return 'map';
  if (type.struct !== undefined) return 'struct';
  if (type.enum !== undefined) return 'enum';
  throw new Error(`unknown schema type ${JSON.stringify(type)}`);
}

// Zero value of a type, or the IDL default when one is given.
function defaultValue(reg, type, def) {
  switch (kind(type)) {
    case 'bool': return def === null || def === undefined ? false : !!def;
    case 'int': return def === null || def === undefined ? 0 : Number(def);
    case 'long': return def === null || def === undefined ? 0n : BigInt(def);
    case 'float': case 'double':
      return def === null || def === undefined ? 0 : Number(def);
    case 'string': return def === null || def === undefined ? '' : String(def);
    case 'bytes': return Buffer.alloc(0);
    case 'vector': case 'map': return [];
    case 'enum': {
      if (def === null || def === undefined) return 0;
      if (typeof def === 'number') return def;
      const vals = reg.enums.get(type.enum) || {};
      const name = String(def).split(/::|\./).pop();
      if (!(name in vals)) throw new Error(`enum default ${def} not in ${type.enum}`);
      return vals[name];
    }
    case 'struct': return defaultStruct(reg, type.struct);
  }
  throw new Error('unreachable');
}

function defaultStruct(reg, name) {
  const s = reg.structs.get(name);
  if (!s) throw new Error(`unknown struct ${name}`);
  const v = {};
  for (const f of s.fields) v[f.name] = defaultValue(reg, f.type, f.default);
  return v;
}

// C++ std::map order for keys of the given type.
function keyCompare(type) {
  switch (kind(type)) {
    case 'string':
      return (a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
    case 'long': return (a, b) => (a < b ? -1 : a > b ? 1 : 0);
    case 'bool': return (a, b) => Number(a) - Number(b);
    case 'int': case 'enum': case 'float': case 'double': return (a, b) => a - b;
    default: return null; // struct/container keys: order left as built
  }
}

// ---- @tars/stream classes ---------------------------------------------------

// Per type: the @tars/stream "proto" used inside List/Map, plus how a struct
// member of that type is written and read.
class TarsTypes {
  constructor(reg) {
    this.reg = reg;
    this.classes = new Map();
  }

  proto(type) {
    switch (kind(type)) {
      case 'bool': return Tars.Boolean;
      case 'int': return {
        byte: Tars.Int8, 'unsigned byte': Tars.UInt8, short: Tars.Int16,
        'unsigned short': Tars.UInt16, int: Tars.Int32, 'unsigned int': Tars.UInt32,
      }[type];
      case 'long': return Tars.Int64;
      case 'float': return Tars.Float;
      case 'double': return Tars.Double;
      case 'string': return Tars.String;
      case 'bytes': return Tars.BinBuffer;
      case 'enum': return Tars.Enum;
      case 'struct': return this.structClass(type.struct);
      // long elements/keys/values travel as decimal strings (bValue=1) so
      // the whole int64 range survives JS.
      case 'vector': {
        const el = type.vector;
        return Tars.List(this.proto(el), kind(el) === 'long' ? 1 : 0);
      }
      case 'map': {
        const [k, v] = type.map;
        return Tars.Map(this.proto(k), this.proto(v),
          kind(k) === 'long' ? 1 : 0, kind(v) === 'long' ? 1 : 0);
      }
    }
    throw new Error('unreachable');
  }

  // Model value -> the object @tars/stream writes.
  toTars(type, v) {
    switch (kind(type)) {
      case 'long': return v.toString();
      case 'bytes': return new Tars.BinBuffer(Buffer.from(v));
      case 'struct': {
        const C = this.structClass(type.struct);
        const o = new C();
        for (const f of this.reg.structs.get(type.struct).fields)
          o[f.name] = this.toTars(f.type, v[f.name]);
        return o;
      }
      case 'vector': {
        const l = this.proto(type);
        for (const e of v) l.push(this.toTars(type.vector, e));
        return l;
      }
      case 'map': {
        const m = this.proto(type);
        for (const [k, val] of v)
          m.insert(this.toTars(type.map[0], k), this.toTars(type.map[1], val));
        return m;
      }
      default: return v;
    }
  }

  // What @tars/stream read -> model value.
  fromTars(type, v) {
    switch (kind(type)) {
      case 'long': return BigInt(v);
      case 'int': case 'enum': case 'float': case 'double': return Number(v);
      case 'bool': return !!v;
      case 'bytes': return Buffer.from(v.toNodeBuffer());
      case 'struct': {
        const o = {};
        for (const f of this.reg.structs.get(type.struct).fields)
          o[f.name] = this.fromTars(f.type, v[f.name]);
        return o;
      }
      case 'vector': return v.value.map((e) => this.fromTars(type.vector, e));
      case 'map': {
        const pairs = [];
        v.forEach((k, val) => {
          pairs.push([this.fromTars(type.map[0], k), this.fromTars(type.map[1], val)]);
        }, v._bKey);
        const cmp = keyCompare(type.map[0]);
        if (cmp) pairs.sort((a, b) => cmp(a[0], b[0]));
        return pairs;
      }
      default: return v;
    }
  }

  writeField(os, f, v) {
    const t = f.type;
    switch (kind(t)) {
      case 'bool': return os.writeBoolean(f.tag, v);
      case 'int': return this.proto(t)._write(os, f.tag, v);
      case 'long': return os.writeInt64(f.tag, v, true);
      case 'float': return os.writeFloat(f.tag, v);
      case 'double': return os.writeDouble(f.tag, v);
      case 'string': return os.writeString(f.tag, v);
      case 'bytes': return os.writeBytes(f.tag, v);
      case 'enum': return os.writeInt32(f.tag, v);
      case 'struct': return os.writeStruct(f.tag, v);
      case 'vector': return os.writeList(f.tag, v);
      case 'map': return os.writeMap(f.tag, v);
    }
    throw new Error('unreachable');
  }

  readField(is, f) {
    const t = f.type, req = !!f.require;
    switch (kind(t)) {
      case 'bool': return is.readBoolean(f.tag, req, !!f.default);
      case 'int': return is[{
        byte: 'readInt8', 'unsigned byte': 'readUInt8', short: 'readInt16',
        'unsigned short': 'readUInt16', int: 'readInt32', 'unsigned int': 'readUInt32',
      }[t]](f.tag, req, f.default === null || f.default === undefined ? 0 : Number(f.default));
      case 'long': return is.readInt64(f.tag, req,
        f.default === null || f.default === undefined ? '0' : String(f.default), true);
      case 'float': return is.readFloat(f.tag, req, Number(f.default || 0));
      case 'double': return is.readDouble(f.tag, req, Number(f.default || 0));
      case 'string': return is.readString(f.tag, req,
        f.default === null || f.default === undefined ? '' : String(f.default));
      case 'bytes': return is.readBytes(f.tag, req, Tars.BinBuffer);
      case 'enum': return is.readInt32(f.tag, req, defaultValue(this.reg, t, f.default));
      case 'struct': return is.readStruct(f.tag, req, this.structClass(t.struct));
      case 'vector': return is.readList(f.tag, req, this.proto(t));
      case 'map': return is.readMap(f.tag, req, this.proto(t));
    }
    throw new Error('unreachable');
  }

  // The class tars2node would generate for a struct, built at run time.
  structClass(name) {
    if (this.classes.has(name)) return this.classes.get(name);
    const s = this.reg.structs.get(name);
    if (!s) throw new Error(`unknown struct ${name}`);
    const self = this;
    const C = function () {
      const d = defaultStruct(self.reg, name);
      for (const f of s.fields) this[f.name] = self.toTars(f.type, d[f.name]);
    };
    this.classes.set(name, C);
    C._classname = name;
    C._write = (os, tag, v) => os.writeStruct(tag, v);
    C._read = (is, tag) => is.readStruct(tag, true, C);
    C._readFrom = (is) => {
      const o = new C();
      for (const f of s.fields) o[f.name] = self.readField(is, f);
      return o;
    };
    C.new = () => new C();
    C.create = (is) => C._readFrom(is);
    C.prototype._writeTo = function (os) {
      for (const f of s.fields) self.writeField(os, f, this[f.name]);
    };
    return C;
  }

  // Encodes a model struct value as a top-level body (no Begin/End).
  encode(name, v) {
    const os = new Tars.TarsOutputStream();
    this.toTars({ struct: name }, v)._writeTo(os);
    return os.getBinBuffer().toNodeBuffer();
  }

  decode(name, buf) {
    const is = new Tars.TarsInputStream(new Tars.BinBuffer(Buffer.from(buf)));
    return this.fromTars({ struct: name }, this.structClass(name)._readFrom(is));
  }
}

// ---- JSON for the C side (format of jce2c's _to_json/_from_json) -------------

function jsonText(reg, type, v) {
  switch (kind(type)) {
    case 'bool': return v ? 'true' : 'false';
    case 'int': case 'enum': return String(v);
    case 'long': return v.toString();
    case 'float': case 'double': {
      // A JSON real must look like one, or a strict reader takes it for an
      // integer: 1 -> 1.0.
      const s = String(v);
      return /[.eE]/.test(s) ? s : `${s}.0`;
    }
    case 'string': return JSON.stringify(v);
    case 'bytes': return JSON.stringify(Buffer.from(v).toString('base64'));
    case 'vector': return `[${v.map((e) => jsonText(reg, type.vector, e)).join(',')}]`;
    case 'map': {
      const [kt, vt] = type.map;
      if (kind(kt) === 'string')
        return `{${v.map(([k, val]) => `${JSON.stringify(k)}:${jsonText(reg, vt, val)}`).join(',')}}`;
      return `[${v.map(([k, val]) => `[${jsonText(reg, kt, k)},${jsonText(reg, vt, val)}]`).join(',')}]`;
    }
    case 'struct': {
      const s = reg.structs.get(type.struct);
      return `{${s.fields.map((f) => `${JSON.stringify(f.name)}:${jsonText(reg, f.type, v[f.name])}`).join(',')}}`;
    }
  }
  throw new Error('unreachable');
}

// JSON.parse that keeps integers beyond 2^53 exact: long literals are
// quoted (outside strings) before parsing, then turned into BigInt by
// fromJson.
function parseJsonExact(text) {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      let j = i + 1;
      while (j < text.length && /[0-9.eE+-]/.test(text[j])) j++;
      const num = text.slice(i, j);
      out += /^-?\d{16,}$/.test(num) ? `"${num}"` : num;
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return JSON.parse(out);
}

// Parsed C JSON -> model value.
function fromJson(reg, type, j) {
  switch (kind(type)) {
    case 'long': return BigInt(j);
    case 'bytes': return Buffer.from(j, 'base64');
    case 'vector': return j.map((e) => fromJson(reg, type.vector, e));
    case 'map': {
      const [kt, vt] = type.map;
      const pairs = kind(kt) === 'string'
        ? Object.keys(j).map((k) => [k, fromJson(reg, vt, j[k])])
        : j.map(([k, val]) => [fromJson(reg, kt, k), fromJson(reg, vt, val)]);
      const cmp = keyCompare(kt);
      if (cmp) pairs.sort((a, b) => cmp(a[0], b[0]));
      return pairs;
    }
    case 'struct': {
      const o = {};
      for (const f of reg.structs.get(type.struct).fields)
        o[f.name] = fromJson(reg, f.type, j[f.name]);
      return o;
    }
    default: return j;
  }
}

// What a value becomes after a trip through the C++ policy: tars2cpp (and
// herald's C) omit an optional float/double within epsilon of its default,
// so the reader gets the default back (tars-wire §1.8).
const FLT_EPSILON = 2 ** -23;
const DBL_EPSILON = 2 ** -52;

function cppExpect(reg, type, v) {
  switch (kind(type)) {
    case 'struct': {
      const o = {};
      for (const f of reg.structs.get(type.struct).fields) {
        let x = cppExpect(reg, f.type, v[f.name]);
        const k = kind(f.type);
        if (!f.require && (k === 'float' || k === 'double')) {
          const def = defaultValue(reg, f.type, f.default);
          const d = k === 'float' ? Math.fround(x - def) : x - def;
          if (Math.abs(d) <= (k === 'float' ? FLT_EPSILON : DBL_EPSILON)) x = def;
        }
        o[f.name] = x;
      }
      return o;
    }
    case 'vector': return v.map((e) => cppExpect(reg, type.vector, e));
    case 'map': return v.map(([k, x]) => [k, cppExpect(reg, type.map[1], x)]);
    default: return v;
  }
}

module.exports = {
  cppExpect,
  loadSchemas, kind, INT_RANGE, defaultValue, defaultStruct, keyCompare,
  TarsTypes, jsonText, parseJsonExact, fromJson,
};
