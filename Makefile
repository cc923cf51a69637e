# herald — plain Makefile, out-of-tree build folder.
#
#   make            build herald, the tools and the bench tools into build/
#   make run        make deps, build, start `herald serve`
#   make test       make deps, build, run every test (unit, sanitizer, jce2c,
#                   interop, integration) and print one summary line
#   make deps       install Debian packages and npm test peers (idempotent)
#   make fuzz       build libFuzzer targets and run each FUZZ_SECONDS
#   make bench      run the benchmarks (never part of make test)
#   make install    install herald, its man page, docs, systemd unit and
#                   /etc/herald files (PREFIX=/usr/local, DESTDIR=)
#   make deb        build a Debian package: BUILD/herald_VERSION_ARCH.deb
#
# BUILD=dir picks the build folder; SAN=1 builds with ASan+UBSan.

BUILD   ?= build
SAN     ?=
CC      ?= cc
OPT     ?= -O2

WARN    := -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-unused-parameter -Wformat=2 -Werror
CFLAGS  ?= $(OPT) -g
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) -D_GNU_SOURCE -MMD -MP \
             -Isrc -I$(BUILD)/gen -I$(BUILD)/gen-test $(SAN_FLAGS)
LDLIBS  := -ljansson -lssl -lcrypto -lsqlite3 -luring -lz -lpthread -lm

ifeq ($(SAN),1)
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
             -fno-omit-frame-pointer
OPT := -O1
endif

# ---- sources ---------------------------------------------------------------
# Every src/<part>/*.c goes into libherald.a except the CLI entry point.
# The load generators (src/bench) are a library of their own, linked only
# by the CLI (herald bench), the bench tools and their tests: the server
# never carries them.
LIB_SRC   := $(filter-out src/cli/% src/bench/%,$(wildcard src/*/*.c))
BLIB_SRC  := $(wildcard src/bench/*.c)
CLI_SRC   := $(wildcard src/cli/*.c)
IDL       := $(wildcard protocol/*.jce)
GEN_NAMES := $(basename $(notdir $(IDL)))
GEN_C     := $(GEN_NAMES:%=$(BUILD)/gen/%.c)
GEN_H     := $(GEN_NAMES:%=$(BUILD)/gen/%.h) $(GEN_NAMES:%=$(BUILD)/gen/%_enums.h)
JCE2C_SRC := $(wildcard tools/jce2c/*.c)
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
# IDL used only by tests (e.g. the Test.Hello interface of tars-wire §2.5).
TEST_IDL  := $(wildcard tests/idl/*.jce)
TEST_GEN_C := $(TEST_IDL:tests/idl/%.jce=$(BUILD)/gen-test/%.c)
TEST_GEN_H := $(TEST_IDL:tests/idl/%.jce=$(BUILD)/gen-test/%.h) \
              $(TEST_IDL:tests/idl/%.jce=$(BUILD)/gen-test/%_enums.h)
TEST_OBJ  := $(TEST_GEN_C:$(BUILD)/gen-test/%.c=$(BUILD)/obj/gen-test/%.o)
TOOL_SRC  := $(wildcard tests/tools/*.c)
BENCH_SRC := $(wildcard bench/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIB_OBJ   := $(call obj,$(LIB_SRC)) $(GEN_C:$(BUILD)/gen/%.c=$(BUILD)/obj/gen/%.o)
LIB       := $(BUILD)/libherald.a
BLIB      := $(BUILD)/libherald_bench.a
HERALD    := $(BUILD)/herald
JCE2C     := $(BUILD)/jce2c
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_BIN  := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all gen deps run test unit unit-san fuzz fuzz-build bench install deb clean FORCE
.DEFAULT_GOAL := all

# The bench tools are built too (not run): tests/integration/push_load.test.js
# drives push_load, and a tool nobody compiles rots.
all: $(HERALD) $(JCE2C) $(UNIT_BIN) $(TOOL_BIN) $(BENCH_BIN)
gen: $(GEN_C) $(GEN_H)

# ---- jce2c and generated code ----------------------------------------------
# jce2c is built without sanitizers in every tree: it only runs at build time.
$(JCE2C): $(JCE2C_SRC) $(wildcard tools/jce2c/*.h)
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(WARN) -O1 -g -D_GNU_SOURCE -Itools/jce2c -o $@ $(JCE2C_SRC)

# RequestF.jce declares module `tars`, a reserved prefix unless --with-tars.
# <Base>_enums.h holds the IDL's constants and enums alone (no jansson, no
# JCE runtime): the one source of every protocol code in src/.
$(BUILD)/gen/%.c $(BUILD)/gen/%.h $(BUILD)/gen/%_enums.h: protocol/%.jce $(JCE2C)
	@mkdir -p $(@D)
	$(JCE2C) $(if $(filter RequestF,$*),--with-tars) -I protocol -o $(BUILD)/gen $<

$(BUILD)/gen-test/%.c $(BUILD)/gen-test/%.h $(BUILD)/gen-test/%_enums.h: tests/idl/%.jce $(JCE2C)
	@mkdir -p $(@D)
	$(JCE2C) -I tests/idl -I protocol -o $(BUILD)/gen-test $<

# ---- dashboard assets, embedded into the binary (src/ops/admin.c) ----------
# The page, its script and uPlot (web/node_modules, installed by make deps).
# The file list is expanded by the shell when the recipe runs, not when make
# reads this file: `make run` installs web/node_modules (its deps step) after
# the Makefile was read, and that first build must embed uPlot.  assets.sum
# holds a checksum of every asset present; it is rewritten only when a file
# appears, disappears or changes (npm gives the files it unpacks old fixed
# mtimes, so their mtimes cannot tell an upgrade), and ops_assets.c is
# regenerated exactly then.  A missing file is left out and the page says so.
ASSET_FILES := src/ops/dashboard/* \
               web/node_modules/uplot/dist/uPlot.iife.min.js \
               web/node_modules/uplot/dist/uPlot.min.css
ASSET_SUM := $(BUILD)/gen-assets/assets.sum
LIB_OBJ   += $(BUILD)/obj/gen-assets/ops_assets.o

# When deps is asked for in the same make (make run, make deps all), it runs
# first, even with -j.
$(ASSET_SUM): FORCE | $(if $(filter deps run,$(MAKECMDGOALS)),deps)
	@mkdir -p $(@D)
	@cksum $(ASSET_FILES) >$@.tmp 2>/dev/null || true
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

FORCE:

$(BUILD)/gen-assets/ops_assets.c: $(ASSET_SUM) tools/embed_assets.sh
	@mkdir -p $(@D)
	sh tools/embed_assets.sh $@ $(ASSET_FILES)

$(BUILD)/obj/gen-assets/%.o: $(BUILD)/gen-assets/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# ---- objects and binaries --------------------------------------------------
$(BUILD)/obj/%.o: %.c | $(GEN_H) $(TEST_GEN_H)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c $(GEN_H)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/obj/gen-test/%.o: $(BUILD)/gen-test/%.c $(TEST_GEN_H)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BLIB): $(call obj,$(BLIB_SRC))
	@rm -f $@
	ar rcs $@ $^

$(HERALD): $(call obj,$(CLI_SRC)) $(BLIB) $(LIB)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TEST_OBJ) $(BLIB) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/tools/%.o $(TEST_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BLIB) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

# ---- set-up ----------------------------------------------------------------
deps:
	@sh mk/deps.sh

run: deps $(HERALD)
	$(HERALD) serve

# ---- tests -----------------------------------------------------------------
unit: $(UNIT_BIN)
	@sh tests/run_unit.sh $(BUILD)/tests $(UNIT_BIN)

unit-san:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/asan SAN=1 unit

test: deps
	@$(MAKE) --no-print-directory all
	@sh tests/run_all.sh $(BUILD)

# ---- fuzzing ---------------------------------------------------------------
FUZZ_SECONDS ?= 60
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=$(BUILD)/fuzz/%)
# Test IDL too: the RPC fuzzer also serves the Test.Hello interface.
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -Isrc -I$(BUILD)/gen -I$(BUILD)/gen-test \
  -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
# Only the layers that parse untrusted bytes (and what they call), so a
# half-built service module never blocks fuzzing.
FUZZ_LIB_SRC := $(filter src/jce/% src/rpc/% src/gateway/% src/core/% \
                  src/ev/% src/ops/%,$(LIB_SRC))
FUZZ_OBJ := $(patsubst %.c,$(BUILD)/fuzzobj/%.o,$(FUZZ_LIB_SRC)) \
            $(GEN_C:$(BUILD)/gen/%.c=$(BUILD)/fuzzobj/gen/%.o) \
            $(TEST_GEN_C:$(BUILD)/gen-test/%.c=$(BUILD)/fuzzobj/gen-test/%.o)
FUZZ_LIB := $(BUILD)/libherald-fuzz.a

$(BUILD)/fuzzobj/gen/%.o: $(BUILD)/gen/%.c $(GEN_H)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -c -o $@ $<

$(BUILD)/fuzzobj/gen-test/%.o: $(BUILD)/gen-test/%.c $(TEST_GEN_H)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -c -o $@ $<

$(BUILD)/fuzzobj/%.o: %.c | $(GEN_H) $(TEST_GEN_H)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -c -o $@ $<

# An archive, so each target links only the modules it uses.
$(FUZZ_LIB): $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/fuzz/%: fuzz/%.c $(FUZZ_LIB)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) $(LDLIBS)

fuzz-build: $(FUZZ_BIN)

fuzz: fuzz-build
	@sh fuzz/run.sh $(BUILD)/fuzz $(FUZZ_SECONDS)

# ---- benchmarks ------------------------------------------------------------
bench: deps $(BENCH_BIN) $(HERALD)
	@sh bench/run.sh $(BUILD)

# ---- install and package ---------------------------------------------------
# mk/install.sh says what goes where; SYSCONFDIR stays /etc whatever the
# prefix, since the unit reads /etc/herald.  The version is the binary's.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/herald
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
VERSION    := $(shell sed -n 's/^\#define HERALD_VERSION "\(.*\)"/\1/p' src/cli/cli.h)

install: $(HERALD)
	@HERALD=$(HERALD) DESTDIR="$(DESTDIR)" BINDIR="$(BINDIR)" MANDIR="$(MANDIR)" \
	  DOCDIR="$(DOCDIR)" UNITDIR="$(UNITDIR)" SYSCONFDIR="$(SYSCONFDIR)" \
	  sh mk/install.sh

deb: $(HERALD)
	@sh mk/deb.sh $(BUILD) $(VERSION)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
