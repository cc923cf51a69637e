#!/bin/sh
# jce2c tests:  sh tests/jce2c/run.sh PATH_TO_JCE2C
#  1. every NN_*.jce here is a broken IDL file: jce2c must exit 1, print the
#     exact line of NN_*.expect on stderr, and write no output file;
#  2. every protocol/*.jce and tests/idl/*.jce compiles, and so does the
#     generated C under the project's warning flags;
#  3. ok/All.jce (every construct, with an include) compiles, and
#     gen_check.c runs the generated code against the JCE runtime.
# Ends with "N passed, N failed"; exits non-zero on any failure.
set -u

J=${1:?usage: run.sh PATH_TO_JCE2C}
case "$J" in /*) ;; *) J="$(pwd)/$J" ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CC=${CC:-cc}
CFLAGS="-std=gnu11 -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter -Wformat=2 -Werror -D_GNU_SOURCE"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && sed 's/^/     /' "$2"; return 0; }

# 1. broken files (run from this directory so messages carry bare names)
for f in "$HERE"/[0-9][0-9]_*.jce; do
    name=$(basename "$f" .jce)
    out="$TMP/neg_$name"
    mkdir -p "$out"
    (cd "$HERE" && "$J" -o "$out" "$name.jce") >"$TMP/stdout" 2>"$TMP/stderr"
    rc=$?
    want=$(cat "$HERE/$name.expect")
    if [ "$rc" != 1 ]; then
        fail "$name (exit $rc, expected 1)" "$TMP/stderr"
    elif ! grep -qxF "$want" "$TMP/stderr"; then
        echo "     want: $want" >>"$TMP/stderr"
        fail "$name (message)" "$TMP/stderr"
    elif [ -n "$(ls -A "$out")" ]; then
        fail "$name (wrote output on error)"
    else
        ok "$name"
    fi
done

# 2. the contracts and test IDL
gen() { # gen OUTDIR FILE [flags...]
    d=$1 f=$2
    shift 2
    "$J" "$@" -I "$ROOT/protocol" -I "$(dirname "$f")" -o "$d" "$f" 2>"$TMP/err"
}
GEN="$TMP/gen"
mkdir -p "$GEN"
for f in "$ROOT"/protocol/*.jce "$ROOT"/tests/idl/*.jce "$HERE"/ok/*.jce; do
    [ -f "$f" ] || continue
    base=$(basename "$f" .jce)
    flags=""
    [ "$base" = RequestF ] && flags=--with-tars
    if ! gen "$GEN" "$f" $flags; then
        fail "generate $base" "$TMP/err"
        continue
    fi
    if [ ! -s "$GEN/$base.h" ] || [ ! -s "$GEN/$base.c" ] || [ ! -s "$GEN/$base.schema.json" ] ||
        [ ! -s "$GEN/${base}_enums.h" ]; then
        fail "generate $base (missing outputs)"
        continue
    fi
    if ! python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$GEN/$base.schema.json" 2>"$TMP/err"; then
        fail "$base.schema.json is not JSON" "$TMP/err"
        continue
    fi
    echo "$base" >>"$TMP/generated"
done
# compiled once all are generated: a header includes its includes' headers
for base in $(cat "$TMP/generated" 2>/dev/null); do
    if $CC $CFLAGS -I"$ROOT/src" -I"$GEN" -fsyntax-only "$GEN/$base.c" 2>"$TMP/err"; then
        ok "compile $base"
    else
        fail "compile $base" "$TMP/err"
    fi
done

# The enum headers stand alone: no src/ on the include path, no jansson,
# nothing but the C library, and they hold every enum and constant.
for base in $(cat "$TMP/generated" 2>/dev/null); do
    printf '#include "%s_enums.h"\n' "$base" >"$TMP/enums_$base.c"
    if $CC $CFLAGS -I"$GEN" -fsyntax-only "$TMP/enums_$base.c" 2>"$TMP/err"; then
        ok "enum header $base stands alone"
    else
        fail "enum header $base stands alone" "$TMP/err"
    fi
done
if grep -q 'herald_ERR_DRAINING = 1012,' "$GEN/Protocol_enums.h" &&
    grep -q '#define herald_PROTOCOL_VERSION 1' "$GEN/Protocol_enums.h" &&
    grep -q 'herald_MSG_DROPPED = 6,' "$GEN/PushAPI_enums.h" &&
    ! grep -q 'herald_ERR_DRAINING = ' "$GEN/Protocol.h" &&
    grep -q '#include "Protocol_enums.h"' "$GEN/Protocol.h"; then
    ok "enums and constants live in the enum header only"
else
    fail "enums and constants live in the enum header only"
fi

# The contract's shape as other tools read it from the schema.
if python3 - "$GEN/PushAPI.schema.json" "$GEN/RequestF.schema.json" >"$TMP/err" 2>&1 <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
m = p["modules"][0]
assert p["file"] == "PushAPI" and m["name"] == "herald"
st = {s["name"]: s for s in m["structs"]}
f = {x["name"]: x for x in st["PushMessage"]["fields"]}
assert f["ttl"] == {"tag": 2, "name": "ttl", "require": False, "type": "int", "default": 86400}, f["ttl"]
assert f["needAck"]["default"] is True and f["payload"]["type"] == {"vector": "byte"}
r = {x["name"]: x for x in st["PushMultiDeviceRsp"]["fields"]}
assert r["rejected"]["type"] == {"map": ["string", "int"]}
q = {x["name"]: x for x in st["PushSingleDeviceReq"]["fields"]}
assert q["msg"]["type"] == {"struct": "herald.PushMessage"} and q["msg"]["require"] is True
ops = [o["name"] for o in m["interfaces"][0]["ops"]]
assert ops == ["pushSingleDevice", "pushMultiDevice", "pushAllOnlineDevice", "pushAllDevice"], ops
op = m["interfaces"][0]["ops"][0]
assert op["ret"] == "int" and op["params"][1] == {"name": "rsp", "out": True, "type": {"struct": "herald.PushSingleDeviceRsp"}}
e = {x["name"]: x for x in m["enums"]}
assert e["PushRet"]["values"]["PUSH_ERR_INTERNAL"] == 10 and e["MsgState"]["values"]["MSG_DROPPED"] == 6
t = json.load(open(sys.argv[2]))["modules"][0]
assert t["name"] == "tars" and [s["name"] for s in t["structs"]] == ["RequestPacket", "ResponsePacket"]
PY
then ok "schema.json contents"; else fail "schema.json contents" "$TMP/err"; fi

# RequestF needs --with-tars; without it every tars* name is refused.
if "$J" -o "$TMP" "$ROOT/protocol/RequestF.jce" 2>"$TMP/err"; then
    fail "RequestF without --with-tars must fail"
elif grep -q "reserved prefix 'tars'" "$TMP/err"; then
    ok "reserved prefix without --with-tars"
else
    fail "reserved prefix without --with-tars" "$TMP/err"
fi

# -I search: an include found only through -I, and an include cycle.
mkdir -p "$TMP/inc/a"
printf '#include "Base.jce"\nmodule X { struct S { 0 require Base::Point p; }; };\n' >"$TMP/inc/a/X.jce"
printf '#include "Z.jce"\nmodule Y { struct T { 0 require int a; }; };\n' >"$TMP/inc/Y.jce"
printf '#include "Y.jce"\nmodule Z { struct U { 0 require Y::T t; }; };\n' >"$TMP/inc/Z.jce"
if "$J" -I "$HERE/ok" -o "$TMP/inc" "$TMP/inc/a/X.jce" 2>"$TMP/err" &&
    "$J" -o "$TMP/inc" "$TMP/inc/Z.jce" 2>>"$TMP/err" &&
    grep -q '#include "Base.h"' "$TMP/inc/X.h" && grep -q '#include "Y.h"' "$TMP/inc/Z.h"; then
    ok "include via -I and include cycle"
else
    fail "include via -I and include cycle" "$TMP/err"
fi

# Generated outputs must be identical from run to run (make relies on it).
"$J" -I "$HERE/ok" -o "$TMP" "$HERE/ok/All.jce" 2>/dev/null
if cmp -s "$TMP/All.c" "$GEN/All.c" && cmp -s "$TMP/All.h" "$GEN/All.h"; then
    ok "deterministic output"
else
    fail "deterministic output"
fi

# 3. run the generated code
if $CC $CFLAGS -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
    -I"$ROOT/src" -I"$GEN" -o "$TMP/gen_check" "$HERE/gen_check.c" \
    "$GEN/All.c" "$GEN/Base.c" "$GEN/Hello.c" "$GEN/PushAPI.c" "$GEN/Protocol.c" "$GEN/RequestF.c" \
    "$ROOT"/src/jce/*.c "$ROOT"/src/core/err.c -ljansson 2>"$TMP/err"; then
    "$TMP/gen_check" >"$TMP/out" 2>&1
    rc=$?
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$TMP/out" | tail -n 1)
    grep -v -E '^(ok  |[0-9]+ passed)' "$TMP/out" | sed 's/^/     /'
    if [ -n "$line" ] && [ "$rc" = 0 ]; then
        passed=$((passed + ${line%% passed*}))
        echo "ok   gen_check ($line)"
    else
        f=${line#*passed, }
        f=${f%% failed*}
        passed=$((passed + ${line%% passed*}))
        failed=$((failed + ${f:-1}))
        [ -n "$line" ] && [ "${f:-0}" = 0 ] && failed=$((failed + 1))
        echo "FAIL gen_check (exit $rc)"
    fi
else
    fail "build gen_check" "$TMP/err"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
