// Interop: the C TARS RPC server (tests/tools/trpc_test_server, built on the
// jce2c-generated PushAPI dispatcher) answering the real @tars/rpc client.
//
//   HERALD_BUILD=build NODE_PATH=tests/js/node_modules node --test tests/interop/rpc.test.js
//
// The proxy and the struct classes are written here by hand from the IDL
// (tars2node, which would generate them, is not installable), so they are
// an independent reading of protocol/PushAPI.jce, not a copy of our output.
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const path = require("node:path");
const Tars = require("@tars/stream");
const rpc = require("@tars/rpc");

const BUILD = process.env.HERALD_BUILD || "build";
const SERVER = path.resolve(BUILD, "tests", "trpc_test_server");
const PUSH_OBJ = "herald.PushServer.PushAPIObj";

// ---- struct classes, the way tars2node shapes them ----

const T = {
  string: (d = "") => ({ def: () => d, w: (os, t, v) => os.writeString(t, v), r: (is, t, q) => is.readString(t, q, d) }),
  int32: (d = 0) => ({ def: () => d, w: (os, t, v) => os.writeInt32(t, v), r: (is, t, q) => is.readInt32(t, q, d) }),
  int64: (d = 0) => ({ def: () => d, w: (os, t, v) => os.writeInt64(t, v), r: (is, t, q) => is.readInt64(t, q, d) }),
  bool: (d = false) => ({ def: () => d, w: (os, t, v) => os.writeBoolean(t, v), r: (is, t, q) => is.readBoolean(t, q, d) }),
  bytes: () => ({ def: () => new Tars.BinBuffer(), w: (os, t, v) => os.writeBytes(t, v), r: (is, t, q) => is.readBytes(t, q, Tars.BinBuffer) }),
  strings: () => ({ def: () => Tars.List(Tars.String), w: (os, t, v) => os.writeList(t, v), r: (is, t, q) => is.readList(t, q, Tars.List(Tars.String)) }),
  strIntMap: () => ({ def: () => Tars.Map(Tars.String, Tars.Int32), w: (os, t, v) => os.writeMap(t, v), r: (is, t, q) => is.readMap(t, q, Tars.Map(Tars.String, Tars.Int32)) }),
  struct: (C) => ({ def: () => new C(), w: (os, t, v) => os.writeStruct(t, v), r: (is, t, q) => is.readStruct(t, q, C) }),
};

// fields: [tag, name, require, type]
function defStruct(name, fields) {
  const C = function () {
    for (const [, n, , ty] of fields) this[n] = ty.def();
    this._classname = name;
  };
  C._classname = name;
  C._write = (os, tag, v) => os.writeStruct(tag, v);
  C._read = (is, tag, def) => is.readStruct(tag, true, def);
  C._readFrom = (is) => {
    const v = new C();
    for (const [tag, n, req, ty] of fields) v[n] = ty.r(is, tag, req);
    return v;
  };
  C.new = () => new C();
  C.create = (is) => C._readFrom(is);
  C.prototype._writeTo = function (os) {
    for (const [tag, n, , ty] of fields) ty.w(os, tag, this[n]);
  };
  return C;
}

const H = {};
H.PushMessage = defStruct("herald.PushMessage", [
  [0, "requestId", false, T.string()],
  [1, "payload", false, T.bytes()],
  [2, "ttl", false, T.int32(86400)],
  [3, "collapseKey", false, T.string()],
  [4, "needAck", false, T.bool(true)],
]);
H.PushSingleDeviceReq = defStruct("herald.PushSingleDeviceReq", [
  [0, "apiKey", true, T.string()],
  [1, "deviceId", true, T.string()],
  [2, "msg", true, T.struct(H.PushMessage)],
]);
H.PushSingleDeviceRsp = defStruct("herald.PushSingleDeviceRsp", [
  [0, "ret", true, T.int32()],
  [1, "msgId", false, T.string()],
  [2, "state", false, T.int32()],
]);
H.PushMultiDeviceReq = defStruct("herald.PushMultiDeviceReq", [
  [0, "apiKey", true, T.string()],
  [1, "deviceIds", true, T.strings()],
  [2, "msg", true, T.struct(H.PushMessage)],
]);
H.PushMultiDeviceRsp = defStruct("herald.PushMultiDeviceRsp", [
  [0, "ret", true, T.int32()],
  [1, "msgId", false, T.string()],
  [2, "online", false, T.int32()],
  [3, "stored", false, T.int32()],
  [4, "rejected", false, T.strIntMap()],
]);
H.PushAllOnlineDeviceReq = defStruct("herald.PushAllOnlineDeviceReq", [
  [0, "apiKey", true, T.string()],
  [1, "msg", true, T.struct(H.PushMessage)],
]);
H.PushAllOnlineDeviceRsp = defStruct("herald.PushAllOnlineDeviceRsp", [
  [0, "ret", true, T.int32()],
  [1, "msgId", false, T.string()],
  [2, "targeted", false, T.int64()],
]);
H.PushAllDeviceReq = defStruct("herald.PushAllDeviceReq", [
  [0, "apiKey", true, T.string()],
  [1, "msg", true, T.struct(H.PushMessage)],
]);
H.PushAllDeviceRsp = defStruct("herald.PushAllDeviceRsp", [
  [0, "ret", true, T.int32()],
  [1, "msgId", false, T.string()],
  [2, "online", false, T.int64()],
]);

// ---- the proxy: int op(Req req, out Rsp rsp), as tars2node --client does ----

function PushAPIProxy() {
  this._name = undefined;
  this._worker = undefined;
}
PushAPIProxy.prototype.setTimeout = function (t) { this._worker.timeout = t; };
PushAPIProxy.prototype.setVersion = function (v) { this._worker.version = v; };

function defOp(fn, Req, Rsp) {
  PushAPIProxy.prototype[fn] = function (req, property) {
    const version = this._worker.version;
    if (version === Tars.UniAttribute.TUP_SIMPLE) {
      const tup = new Tars.UniAttribute();
      tup.tupVersion = version;
      tup.writeStruct("req", req);
      return this._worker.tup_invoke(fn, tup, property).then((data) => ({
        ret: data.response.tup.readInt32(""),
        rsp: data.response.tup.readStruct("rsp", Rsp),
      }));
    }
    const os = new Tars.TarsOutputStream();
    os.writeStruct(1, req);
    return this._worker.tars_invoke(fn, os.getBinBuffer(), property).then((data) => {
      const is = new Tars.TarsInputStream(data.response.sBuffer);
      return { ret: is.readInt32(0, true, 0), rsp: is.readStruct(2, true, Rsp) };
    });
  };
}
defOp("pushSingleDevice", H.PushSingleDeviceReq, H.PushSingleDeviceRsp);
defOp("pushMultiDevice", H.PushMultiDeviceReq, H.PushMultiDeviceRsp);
defOp("pushAllOnlineDevice", H.PushAllOnlineDeviceReq, H.PushAllOnlineDeviceRsp);
defOp("pushAllDevice", H.PushAllDeviceReq, H.PushAllDeviceRsp);

// ---- server lifecycle ----

let server, port;

before(async () => {
  server = spawn(SERVER, ["0"], { stdio: ["pipe", "pipe", "inherit"] });
  port = await new Promise((resolve, reject) => {
    let out = "";
    server.on("error", reject);
    server.on("exit", (code) => reject(new Error("server exited " + code)));
    server.stdout.on("data", (d) => {
      out += d;
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
  });
});

after(async () => {
  rpc.client.destroy();
  if (server && server.exitCode === null) {
    const gone = new Promise((r) => server.once("exit", (code, sig) => r({ code, sig })));
    server.stdin.end();
    server.kill("SIGTERM");
    // A clean 0 also means no sanitizer report in a SAN=1 build.
    assert.deepEqual(await gone, { code: 0, sig: null });
  }
});

function proxy(version, tag) {
  // A distinct endpoint string per proxy: @tars/rpc shares one ObjectProxy
  // (and so one version setting) per object name.
  const p = rpc.client.stringToProxy(PushAPIProxy,
    `${PUSH_OBJ}@tcp -h 127.0.0.1 -p ${port} -t ${3000 + tag}`);
  p.setTimeout(3000);
  if (version !== 1) p.setVersion(version);
  return p;
}

function message(requestId, payload, extra = {}) {
  const m = new H.PushMessage();
  m.requestId = requestId;
  m.payload = new Tars.BinBuffer(Buffer.from(payload));
  Object.assign(m, extra);
  return m;
}

async function rejects(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail("call succeeded");
}

// ---- the four operations, v1 and v3 ----

for (const version of [1, 3]) {
  test(`PushAPI over v${version}`, async () => {
    const p = proxy(version, version);

    const single = new H.PushSingleDeviceReq();
    single.apiKey = "k1";
    single.deviceId = "dev-42";
    single.msg = message("r1", "hello");
    let r = await p.pushSingleDevice(single);
    assert.equal(r.ret, 0);
    assert.equal(r.rsp.ret, 0);
    assert.equal(r.rsp.msgId, "m-dev-42-r1");
    assert.equal(r.rsp.state, 1);

    single.msg = message("r2", "", { needAck: false });
    r = await p.pushSingleDevice(single);
    assert.equal(r.rsp.msgId, "m-dev-42-r2");
    assert.equal(r.rsp.state, 2, "needAck=false must reach the server");

    const multi = new H.PushMultiDeviceReq();
    multi.apiKey = "k1";
    for (const id of ["a", "", "b", "x".repeat(300), ""]) multi.deviceIds.push(id);
    multi.msg = message("r3", "p", { ttl: 60 });
    r = await p.pushMultiDevice(multi);
    assert.equal(r.ret, 0);
    assert.equal(r.rsp.msgId, "m-multi-r3");
    assert.equal(r.rsp.online, 5);
    assert.equal(r.rsp.stored, 5);
    assert.equal(r.rsp.rejected.size(), 2);
    assert.equal(r.rsp.rejected.get(""), 1);
    assert.equal(r.rsp.rejected.get("x".repeat(300)), 2);

    multi.msg = message("r4", "p", { ttl: 0 });
    multi.deviceIds = Tars.List(Tars.String);
    multi.deviceIds.push("only");
    r = await p.pushMultiDevice(multi);
    assert.equal(r.rsp.online, 1);
    assert.equal(r.rsp.stored, 0);
    assert.equal(r.rsp.rejected.size(), 0);

    const online = new H.PushAllOnlineDeviceReq();
    online.apiKey = "k1";
    online.msg = message("r5", Buffer.alloc(1000, 7));
    r = await p.pushAllOnlineDevice(online);
    assert.equal(r.ret, 0);
    assert.equal(r.rsp.msgId, "m-online-r5");
    assert.equal(Number(r.rsp.targeted), 1000);

    const all = new H.PushAllDeviceReq();
    all.apiKey = "k1";
    all.msg = message("r6", "z");
    r = await p.pushAllDevice(all);
    assert.equal(r.ret, 0);
    assert.equal(r.rsp.msgId, "m-all-r6");
    assert.equal(Number(r.rsp.online), 0);
  });
}

// ---- one-way, tars_ping, wrong function, missing require field ----

test("one-way call gets no reply and the server keeps serving", async () => {
  const p = proxy(1, 10);
  const req = new H.PushSingleDeviceReq();
  req.apiKey = "k";
  req.deviceId = "d";
  req.msg = message("ow", "x");
  const e = await rejects(p.pushSingleDevice(req, { packetType: 1 }));
  assert.match(e.error.message, /one way/);
  // Had the server answered, the reply would be matched to nothing; the next
  // call on the same connection must still get its own answer.
  req.msg = message("after", "x");
  const r = await p.pushSingleDevice(req);
  assert.equal(r.rsp.msgId, "m-d-after");
});

test("tars_ping", async () => {
  const p = proxy(1, 11);
  const data = await p._worker.tars_invoke("tars_ping", new Tars.TarsOutputStream().getBinBuffer());
  assert.equal(data.response.iRet, 0);
});

test("wrong function name gets -3", async () => {
  const p = proxy(1, 12);
  const os = new Tars.TarsOutputStream();
  os.writeInt32(1, 1);
  const e = await rejects(p._worker.tars_invoke("pushNowhere", os.getBinBuffer()));
  assert.equal(e.error.code, -3);
});

test("wrong function name over v3 gets -3", async () => {
  const p = proxy(3, 13);
  const tup = new Tars.UniAttribute();
  tup.tupVersion = 3;
  tup.writeInt32("x", 1);
  const e = await rejects(p._worker.tup_invoke("pushNowhere", tup));
  assert.equal(e.error.code, -3);
});

test("missing require field gets -1", async () => {
  const p = proxy(1, 14);
  // pushSingleDevice's req is at tag 1; send only something at tag 2.
  const os = new Tars.TarsOutputStream();
  os.writeInt32(2, 5);
  const e = await rejects(p._worker.tars_invoke("pushSingleDevice", os.getBinBuffer()));
  assert.equal(e.error.code, -1);
  assert.match(e.error.message, /require field not exist/);

  // and a req struct lacking its require field deviceId (tag 1)
  const bad = new Tars.TarsOutputStream();
  const Partial = defStruct("herald.PushSingleDeviceReq", [[0, "apiKey", true, T.string()]]);
  const v = new Partial();
  v.apiKey = "k";
  bad.writeStruct(1, v);
  const e2 = await rejects(p._worker.tars_invoke("pushSingleDevice", bad.getBinBuffer()));
  assert.equal(e2.error.code, -1);
});

// ---- raw socket: pipelining, split writes, one-way answered by nothing ----

const net = require("node:net");
const TarsPacket = require("@tars/rpc/core/rpc-tars/RequestF.js").tars;

function requestFrame(reqId, func, body, packetType = 0) {
  const req = new TarsPacket.RequestPacket();
  req.iVersion = 1;
  req.cPacketType = packetType;
  req.iRequestId = reqId;
  req.sServantName = PUSH_OBJ;
  req.sFuncName = func;
  req.sBuffer = body;
  const os = new Tars.TarsOutputStream();
  os.setHeaderLength(0);
  req._writeTo(os);
  os.setHeaderLength(os.getBinBuffer().length);
  return os.getBinBuffer().toNodeBuffer();
}

function singleBody(deviceId, requestId) {
  const req = new H.PushSingleDeviceReq();
  req.apiKey = "k";
  req.deviceId = deviceId;
  req.msg = message(requestId, "x");
  const os = new Tars.TarsOutputStream();
  os.writeStruct(1, req);
  return os.getBinBuffer();
}

test("raw stream: pipelined frames in split writes, one-way unanswered", async () => {
  const stream = Buffer.concat([
    requestFrame(101, "pushSingleDevice", singleBody("d1", "a"), 1), // one-way
    requestFrame(102, "pushSingleDevice", singleBody("d2", "b")),
    requestFrame(103, "tars_ping", new Tars.BinBuffer()),
    requestFrame(104, "pushSingleDevice", singleBody("d3", "c")),
  ]);
  const sock = net.connect(port, "127.0.0.1");
  await new Promise((r, j) => { sock.once("connect", r); sock.once("error", j); });
  // Answers come back in request order, so an answer to the one-way call
  // would arrive first: waiting for three frames is enough to see it.
  let got = Buffer.alloc(0);
  const frames = () => {
    let n = 0;
    for (let off = 0; off + 4 <= got.length; n++) {
      const len = got.readUInt32BE(off);
      if (off + len > got.length) break;
      off += len;
    }
    return n;
  };
  const three = new Promise((resolve) => {
    const timer = setTimeout(resolve, 5000);
    sock.on("data", (d) => {
      got = Buffer.concat([got, d]);
      if (frames() >= 3) { clearTimeout(timer); resolve(); }
    });
  });
  // 7-byte pieces with pauses: the server must reassemble across reads.
  for (let i = 0; i < stream.length; i += 7) {
    sock.write(stream.subarray(i, i + 7));
    if (i % 70 === 0) await new Promise((r) => setTimeout(r, 2));
  }
  await three;
  sock.destroy();

  const answers = [];
  for (let off = 0; off + 4 <= got.length;) {
    const len = got.readUInt32BE(off);
    const is = new Tars.TarsInputStream(new Tars.BinBuffer(got.subarray(off + 4, off + len)));
    answers.push(TarsPacket.ResponsePacket._readFrom(is));
    off += len;
  }
  assert.deepEqual(answers.map((a) => a.iRequestId), [102, 103, 104]);
  assert.ok(answers.every((a) => a.iRet === 0));
  const is = new Tars.TarsInputStream(answers[2].sBuffer);
  assert.equal(is.readInt32(0, true, 0), 0);
  assert.equal(is.readStruct(2, true, H.PushSingleDeviceRsp).msgId, "m-d3-c");
});

test("oversize frame closes the connection", async () => {
  const sock = net.connect(port, "127.0.0.1");
  await new Promise((r, j) => { sock.once("connect", r); sock.once("error", j); });
  const closed = new Promise((r) => sock.once("close", r));
  sock.on("error", () => {});
  const head = Buffer.alloc(4);
  head.writeUInt32BE(0x7fffffff);
  sock.write(head);
  await closed; // the server drops it on the length prefix alone

  // and keeps serving others
  const p = proxy(1, 15);
  const data = await p._worker.tars_invoke("tars_ping", new Tars.TarsOutputStream().getBinBuffer());
  assert.equal(data.response.iRet, 0);
});
