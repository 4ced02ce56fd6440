# Makefile - libxdevice (static and shared) and the fio external ioengine.
#
#   make          install missing packages (root) or name them, fetch and
#                 configure the source of the installed fio, build everything
#                 (the library, the fio engine, xdconfig, xdreport, xdmicro,
#                 xdcachesim, xdcheckpoint and xdtune)
#   make test     unit tests (tests/unit/*.c) and end-to-end tests (tests/e2e)
#   make torture  tests/torture.py: random fio jobs with verify over every type
#                 and mode (minutes; TORTURE_SEED=, TORTURE_CASES= replay)
#   make torture-crash  kill -9 at random moments on every type, layer and
#                 mode; what survived checked against fio's own engine
#   make torture-asan  make torture's random jobs over the engine built with
#                 ASan and UBSan (scripts/torture-asan.sh)
#   make bench    scripts/bench.sh: the bench mix, 3 repetitions, and its report;
#                 HOSTS=FILE: on every fio server FILE names (scripts/bench-hosts.sh)
#   make bench-targets  scripts/bench-targets.sh: the types' own targets
#   make perf     scripts/perf.sh
#   make regress  scripts/regress.sh: working tree against BASE=<ref> (HEAD)
#   make regress-selftest  the regression gate's real proofs (minutes): a
#                 20% slower build fails it, an A/A run passes
#   make install  PREFIX=/usr/local LIBDIR=$(PREFIX)/lib DESTDIR=: the library
#                 (shared, versioned, and static), xdevice.h, xdevice.pc, the
#                 engine (LIBDIR/fio/xdevice.so), the tools, man pages, example
#                 configs and programs, the xdtune-daemon@ unit (not enabled)
#   make uninstall  the same variables: removes what install put there
#   make deb      build/deb/xdevice_VERSION_ARCH.deb (scripts/deb.sh)
#   make man      build/man/: the man pages, xdevice(7) generated from the schema
#   make sanitize the library and engine under ASan+UBSan and under TSan
#                 (build/asan, build/tsan), then tests/sanitize/sanitize.py: a short
#                 fio matrix under each
#   make clean    remove build/
#
# Extra compiler/linker flags can be given as CFLAGS=... / LDFLAGS=...; they
# are appended to the project's own.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := all
.DELETE_ON_ERROR:

BUILD := build
FIO_BIN := /usr/bin/fio
PYTHON := /usr/bin/python3
UNIT_TIMEOUT ?= 300
TEST_JOBS ?= 3
E2E_WORKERS = $(if $(filter-out 0 1,$(TEST_JOBS)),-n $(TEST_JOBS) --dist loadgroup)

XD_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Wno-unused-parameter -fPIC -D_GNU_SOURCE -MMD -MP
XD_CPPFLAGS := -Ibackends
ALL_CFLAGS = $(XD_CFLAGS) $(XD_CPPFLAGS) $(CFLAGS)
# The libraries libxdevice needs, as pkg-config-name:linker-flag ("-": no .pc
# file); xdevice.pc names the ones with a .pc in Requires.private.
LIB_DEPS := liburing:-luring -:-laio liblz4:-llz4 libzstd:-lzstd snappy:-lsnappy \
	zlib:-lz libbrotlienc:-lbrotlienc libbrotlidec:-lbrotlidec -:-lpthread -:-lm
LIBS := $(foreach d,$(LIB_DEPS),$(word 2,$(subst :, ,$(d))))

# The one version, XD_VERSION in the public header: the shared library is
# libxdevice.so.VERSION with SONAME libxdevice.so.MAJOR.
XD_VERSION := $(shell sed -n 's/^\#define XD_VERSION "\(.*\)"/\1/p' backends/xdevice.h)
XD_MAJOR := $(firstword $(subst ., ,$(XD_VERSION)))
SO_REAL := libxdevice.so.$(XD_VERSION)
SO_NAME := libxdevice.so.$(XD_MAJOR)

# Install layout (GNU names); DESTDIR is prepended to every path.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
MAN_PAGES := $(addprefix $(BUILD)/man/,xdconfig.1 xdreport.1 xdtune.1 xdcheckpoint.1 libxdevice.3 xdevice.7)

LIB_SRCS := $(wildcard backends/*.c backends/core/*.c backends/drivers/*.c backends/drivers/*/*.c backends/layers/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
ENGINE_SRCS := $(wildcard ioengine/*.c)
ENGINE_OBJS := $(ENGINE_SRCS:%.c=$(BUILD)/obj/%.o)
# What xdreport and xdtune share (common/fiojson.c: reading fio's JSON output).
COMMON_SRCS := $(wildcard common/*.c)
COMMON_OBJS := $(COMMON_SRCS:%.c=$(BUILD)/obj/%.o)
REPORT_SRCS := $(wildcard reports/*.c)
REPORT_OBJS := $(REPORT_SRCS:%.c=$(BUILD)/obj/%.o)
TUNER_SRCS := $(wildcard tuner/*.c)
TUNER_OBJS := $(TUNER_SRCS:%.c=$(BUILD)/obj/%.o)
# The tuner's model and objective without its main, for tests/unit/tuner_*.c.
TUNER_LIB_OBJS := $(filter-out $(BUILD)/obj/tuner/xdtune.o,$(TUNER_OBJS)) $(COMMON_OBJS)
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_BINS := $(UNIT_SRCS:%.c=$(BUILD)/%)

DEPS_STAMP := $(BUILD)/.deps
FIO_STAMP := $(BUILD)/.fio-src-dir

# The configured fio source dir, written by the $(FIO_STAMP) rule. Deferred
# (=, not :=) on purpose: on a fresh clone the file does not exist when the
# Makefile is read, and these are only expanded in recipes that run after
# $(FIO_STAMP) has been made - so one `make` does fetch and build.
FIOSRC = $(shell cat $(FIO_STAMP) 2>/dev/null)
FIO_BUILT_VERSION = $(shell cat $(FIOSRC)/.xd-version 2>/dev/null)
# What fio's own Makefile adds for its engines, minus FIO_INTERNAL; they change
# no struct layout on 64-bit Linux, but keep dprint() and hash_long() the same
# as in /usr/bin/fio. -iquote rather than -I: fio has an err.h that would
# shadow <err.h>; all of fio's own includes use quotes.
ENGINE_CPPFLAGS = $(FIO_CPPFLAGS) -DXD_FIO_BUILT_VERSION='"$(FIO_BUILT_VERSION)"'
FIO_CPPFLAGS = -iquote $(FIOSRC) -include $(FIOSRC)/config-host.h \
	-D_LARGEFILE_SOURCE -D_FILE_OFFSET_BITS=64 -DFIO_INC_DEBUG \
	-DBITS_PER_LONG=$(if $(shell grep -s CONFIG_64BIT $(FIOSRC)/config-host.h),64,32)

.PHONY: all test bench perf docs clean man install uninstall deb

all: $(BUILD)/libxdevice.a $(BUILD)/libxdevice.so $(BUILD)/xdevice.so $(BUILD)/xdconfig \
	$(BUILD)/xdreport $(BUILD)/xdmicro $(BUILD)/xdcachesim $(BUILD)/xdcheckpoint $(BUILD)/xdtune $(MAN_PAGES) \
	$(BUILD)/xdevice-defaults.ini

# --- packages and fio source -------------------------------------------------

$(DEPS_STAMP): scripts/deps.sh
	@mkdir -p $(@D)
	bash scripts/deps.sh
	@touch $@

# Re-run when fio is upgraded (dpkg rewrites fio.list): the engine must match
# the fio that runs it. The script is fast when the source is already there.
$(FIO_STAMP): scripts/fio-source.sh $(wildcard /var/lib/dpkg/info/fio.list) | $(DEPS_STAMP)
	bash scripts/fio-source.sh $(BUILD) > $@.out
	@dir=$$(tail -n 1 $@.out); \
	 test -f "$$dir/config-host.h" -a -f "$$dir/.xd-version" \
	   || { echo "xdevice: scripts/fio-source.sh printed no configured source dir" >&2; exit 1; }; \
	 realpath --relative-to=. "$$dir" > $@.tmp; mv $@.tmp $@; rm -f $@.out

# --- library -----------------------------------------------------------------

$(BUILD)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# libxdevice.so exports only what xdevice.h marks XD_API; everything else is
# hidden (docs/DESIGN.md, "Public surface"). Programs that use internal
# functions (tools, tuner, unit tests, the engine) link libxdevice.a or the
# objects, where hidden symbols still resolve.
LIB_VISIBILITY := -fvisibility=hidden
LIB_CFLAGS = $(ALL_CFLAGS) $(LIB_VISIBILITY)

# The library's objects depend on the flags they were built with as well as
# on their sources: one left from a build with other flags (no -fvisibility,
# another CFLAGS=) is rebuilt. The stamp is rewritten only when they change.
LIB_FLAGS_STAMP := $(BUILD)/.lib-cflags
$(LIB_FLAGS_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(CC) $(LIB_CFLAGS)' | cmp -s - $@ || echo '$(CC) $(LIB_CFLAGS)' > $@
FORCE:

$(LIB_OBJS): $(BUILD)/obj/%.o: %.c $(LIB_FLAGS_STAMP) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) -c -o $@ $<

$(BUILD)/libxdevice.a: $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/$(SO_REAL): $(LIB_OBJS)
	$(CC) -shared -Wl,-soname,$(SO_NAME) -Wl,-z,defs $(LDFLAGS) -o $@ $^ $(LIBS)

# The links a build tree needs to link (-lxdevice) and run against it.
$(BUILD)/libxdevice.so: $(BUILD)/$(SO_REAL)
	ln -sfn $(SO_REAL) $(BUILD)/$(SO_NAME)
	ln -sfn $(SO_NAME) $@

# xdconfig: check an INI file, dump the effective config, print the docs table.
$(BUILD)/xdconfig: backends/tools/xdconfig.c $(BUILD)/libxdevice.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libxdevice.a $(LIBS)

# xdmicro: single-core micro-benchmarks of the zero scan, crc32c and the codecs.
$(BUILD)/xdmicro: backends/tools/xdmicro.c $(BUILD)/libxdevice.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libxdevice.a $(LIBS)

# xdcachesim: replay a trace (trace=FILE) through LRU, S3-FIFO and Belady's MIN.
$(BUILD)/xdcachesim: backends/tools/xdcachesim.c $(BUILD)/libxdevice.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libxdevice.a $(LIBS)

# xdcheckpoint: list, verify and restore the checkpoint layer's checkpoints.
$(BUILD)/xdcheckpoint: backends/tools/xdcheckpoint.c $(BUILD)/libxdevice.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libxdevice.a -lcjson $(LIBS)

# README's parameter table is generated from the schema; tests check it is current.
docs: $(BUILD)/xdconfig
	bash scripts/update-readme-table.sh $(BUILD)/xdconfig README.md

# Every key's default, installed as share/xdevice/xdevice-defaults.ini.
$(BUILD)/xdevice-defaults.ini: $(BUILD)/xdconfig
	$(BUILD)/xdconfig defaults > $@

# --- man pages -----------------------------------------------------------------

# @VERSION@ becomes XD_VERSION; in xdevice.7 the @CONFIG_KEYS@ line becomes
# `xdconfig roff`, the schema's own view, so the page cannot drift from it.
man: $(MAN_PAGES)

$(BUILD)/man/xdevice.7: man/xdevice.7.in $(BUILD)/xdconfig backends/xdevice.h
	@mkdir -p $(@D)
	$(BUILD)/xdconfig roff > $@.keys
	sed -e 's/@VERSION@/$(XD_VERSION)/g' -e '/^@CONFIG_KEYS@$$/{r $@.keys' -e 'd}' $< > $@
	rm -f $@.keys

$(BUILD)/man/%: man/% backends/xdevice.h
	@mkdir -p $(@D)
	sed -e 's/@VERSION@/$(XD_VERSION)/g' $< > $@

# --- install -------------------------------------------------------------------

INSTALL_ENV = BUILD=$(BUILD) VERSION=$(XD_VERSION) DESTDIR=$(DESTDIR) PREFIX=$(PREFIX) \
	BINDIR=$(BINDIR) LIBDIR=$(LIBDIR) INCLUDEDIR=$(INCLUDEDIR) DATADIR=$(DATADIR) \
	MANDIR=$(MANDIR) UNITDIR=$(UNITDIR) LIB_DEPS="$(LIB_DEPS)"

install: all
	$(INSTALL_ENV) bash scripts/install.sh install

uninstall:
	$(INSTALL_ENV) bash scripts/install.sh uninstall

# A .deb of this build: /usr, the engine in /usr/lib/<triplet>/fio/.
deb: all
	BUILD=$(BUILD) VERSION=$(XD_VERSION) LIB_DEPS="$(LIB_DEPS)" FIOSRC=$(FIOSRC) \
		bash scripts/deb.sh

# --- reports -------------------------------------------------------------------

# xdreport: `report` (charts via gnuplot, HTML, Markdown, CSV) and `compare`.
# It reads results only, so it needs no fio source; it links the library
# (static) for the directory checks of the files it writes.
$(BUILD)/xdreport: $(REPORT_OBJS) $(COMMON_OBJS) $(BUILD)/libxdevice.a
	$(CC) $(LDFLAGS) -o $@ $(REPORT_OBJS) $(COMMON_OBJS) $(BUILD)/libxdevice.a -lcjson $(LIBS)

# --- tuner ---------------------------------------------------------------------

# xdtune: `search` (trials of fio on a job) and `daemon` (live retuning).
$(BUILD)/obj/tuner/%.o: tuner/%.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/xdtune: $(TUNER_OBJS) $(COMMON_OBJS) $(BUILD)/libxdevice.a
	$(CC) $(LDFLAGS) -o $@ $(TUNER_OBJS) $(COMMON_OBJS) $(BUILD)/libxdevice.a -lcjson $(LIBS)

# --- fio ioengine --------------------------------------------------------------

$(BUILD)/obj/ioengine/%.o: ioengine/%.c $(FIO_STAMP) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ENGINE_CPPFLAGS) -c -o $@ $<

# The library objects are linked in, so fio needs no libxdevice.so at run time.
# No -z defs: fio's helpers (get_io_u, td_verror, ...) resolve from the running
# fio binary. check-engine-symbols.sh does that check against $(FIO_BIN)
# instead, and also fails on symbols that fio exports too (fio's would win).
$(BUILD)/xdevice.so: $(ENGINE_OBJS) $(LIB_OBJS) scripts/check-engine-symbols.sh
	$(CC) -shared -rdynamic -Wl,-z,nodelete $(LDFLAGS) -o $@ $(ENGINE_OBJS) $(LIB_OBJS) $(LIBS)
	bash scripts/check-engine-symbols.sh $@ $(FIO_BIN)

# --- tests -------------------------------------------------------------------

# The engine as if built for another fio: the version guard must refuse it.
$(BUILD)/tests/xdevice-other-fio.so: $(ENGINE_SRCS) ioengine/engine.h $(LIB_OBJS) $(FIO_STAMP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(FIO_CPPFLAGS) -DXD_FIO_BUILT_VERSION='"fio-0.0-other"' -shared -rdynamic \
		-Wl,-z,nodelete $(LDFLAGS) -o $@ $(ENGINE_SRCS) $(LIB_OBJS) $(LIBS)

$(BUILD)/tests/unit/tuner_%: tests/unit/tuner_%.c $(TUNER_LIB_OBJS) $(BUILD)/libxdevice.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Ituner $(LDFLAGS) -o $@ $< $(TUNER_LIB_OBJS) $(BUILD)/libxdevice.a -lcjson $(LIBS)

$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libxdevice.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Ibackends/core $(LDFLAGS) -o $@ $< $(BUILD)/libxdevice.a $(LIBS)

# Each unit test is a program: exit 0 pass, 77 skip, anything else fails (its
# output is then shown; it is kept in build/tests/unit/NAME.log). fio's own
# job files (tests/e2e/test_conformance.py, about 80 s of one core) run
# beside the rest, in the background from the start, their report printed
# at the end (it is kept in build/tests/conformance.log): one after the
# other they took the whole of the 10 minutes make test may take.
# The end-to-end tests run in TEST_JOBS pytest-xdist workers: a test spends
# most of its time waiting on fio (its start alone sleeps 100 ms), so three
# workers keep 2 cores busy (e2e: 11:55 in one process, 4:22 in three, on
# this project's 2-core machine). Tests that share something outside their
# own tmp_path (the repository's results/, a make in the tree) carry one
# xdist_group and run in one worker. TEST_JOBS=1: one process, in order.
test: all $(UNIT_BINS) $(BUILD)/tests/xdevice-other-fio.so $(BUILD)/tests/fuzz_replay
	@PYTHONDONTWRITEBYTECODE=1 $(PYTHON) -m pytest -q -rs -p no:cacheprovider \
	  tests/e2e/test_conformance.py > $(BUILD)/tests/conformance.log 2>&1 & conf=$$!; \
	trap 'kill $$conf 2>/dev/null || true' INT TERM; \
	pass=0; fail=0; \
	if $(BUILD)/tests/fuzz_replay tests/fuzz/corpus/* > $(BUILD)/tests/fuzz_replay.log 2>&1; then \
	  echo "PASS fuzz corpus replay ($$(ls tests/fuzz/corpus | wc -l) inputs, ASan+UBSan)"; pass=$$((pass + 1)); \
	else echo "FAIL fuzz corpus replay"; sed 's/^/    /' $(BUILD)/tests/fuzz_replay.log; fail=$$((fail + 1)); fi; \
	for t in $(UNIT_BINS); do \
	  name=$${t##*/}; rc=0; \
	  timeout $(UNIT_TIMEOUT) ./$$t > $$t.log 2>&1 || rc=$$?; \
	  case $$rc in \
	    0)  echo "PASS $$name"; sed -n 's/^skip: /    skip: /p' $$t.log; pass=$$((pass + 1)) ;; \
	    77) echo "SKIP $$name"; sed -n 's/^skip: /    skip: /p' $$t.log ;; \
	    *)  echo "FAIL $$name (exit $$rc)"; sed 's/^/    /' $$t.log; fail=$$((fail + 1)) ;; \
	  esac; \
	done; \
	echo "$$pass passed, $$fail failed"; \
	rc=0; PYTHONDONTWRITEBYTECODE=1 $(PYTHON) -m pytest -q -rs -p no:cacheprovider $(E2E_WORKERS) tests/e2e \
	  --ignore=tests/e2e/test_conformance.py || rc=$$?; \
	crc=0; wait $$conf || crc=$$?; \
	echo "fio conformance (tests/e2e/test_conformance.py, run beside the tests above):"; \
	cat $(BUILD)/tests/conformance.log; \
	[ $$fail -eq 0 ] && [ $$rc -eq 0 ] && [ $$crc -eq 0 ]

# Random mixes of type, mode, iodepth, bs, rw, numjobs, thread/fork with verify,
# live reloads and hybrid migration; prints each case's seed and the command
# that replays a failure. tests/e2e/test_torture.py runs a fixed slice of it.
.PHONY: torture
torture: all
	$(PYTHON) tests/torture.py

# fio's own job files in every async mode on every storage type (make test
# runs each job in one mode, the modes taking turns; see test_conformance.py).
.PHONY: conformance
conformance: all
	XD_CONFORMANCE=full PYTHONDONTWRITEBYTECODE=1 $(PYTHON) -m pytest -q -rs -p no:cacheprovider \
		tests/e2e/test_conformance.py

# --- fuzzing -------------------------------------------------------------------

# The container and chunk decoders under ASan and UBSan. `make fuzz` runs
# libFuzzer (clang) for FUZZ_SECONDS; `make test` replays the seed corpus
# (tests/fuzz/corpus) through the same target built with gcc.
FUZZ_SECONDS ?= 60
SAN_FLAGS := -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer -std=gnu11 -D_GNU_SOURCE -Ibackends
FUZZ_DEPS := tests/fuzz/container_fuzz.c $(LIB_SRCS)

$(BUILD)/fuzz/container_fuzz: $(FUZZ_DEPS) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	clang $(SAN_FLAGS) -fsanitize=fuzzer -o $@ $(FUZZ_DEPS) $(LIBS)

$(BUILD)/tests/fuzz_replay: tests/fuzz/fuzz_replay.c $(FUZZ_DEPS) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(SAN_FLAGS) -o $@ $< $(FUZZ_DEPS) $(LIBS)

# Writes the seed corpus from real containers' bytes (run once, committed).
$(BUILD)/tests/fuzz_seeds: tests/fuzz/make_seeds.c $(BUILD)/libxdevice.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libxdevice.a $(LIBS)

.PHONY: fuzz
fuzz: $(BUILD)/fuzz/container_fuzz
	@mkdir -p $(BUILD)/fuzz/corpus
	$< -max_total_time=$(FUZZ_SECONDS) -max_len=70000 $(BUILD)/fuzz/corpus tests/fuzz/corpus

# --- sanitizers ------------------------------------------------------------------

# The library and the fio engine built twice more, into build/asan (ASan and
# UBSan) and build/tsan (TSan), each with its own objects: the same sources,
# flags and fio headers (ENGINE_CPPFLAGS) as build/xdevice.so, plus the
# sanitizer. /usr/bin/fio is not instrumented; tests/sanitize/sanitize.py preloads the
# runtime into it (LD_PRELOAD) and runs a short fio matrix on each engine.
# -O1 and frame pointers keep the reports' stacks whole. gcc: the script
# preloads the runtime that $(SAN_CC) -print-file-name=libasan.so names (clang
# would need -shared-libsan and its own runtime names).
SAN_CC := gcc
SANITIZERS := asan tsan
SAN_CFLAGS_asan := -fsanitize=address,undefined
SAN_CFLAGS_tsan := -fsanitize=thread
SAN_COMMON := -O1 -fno-omit-frame-pointer

# $(1): asan or tsan
define SANITIZER_RULES
$(BUILD)/$(1)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $$(@D)
	$(SAN_CC) $$(ALL_CFLAGS) $(SAN_COMMON) $(SAN_CFLAGS_$(1)) -c -o $$@ $$<

$(LIB_OBJS:$(BUILD)/obj/%=$(BUILD)/$(1)/obj/%): ALL_CFLAGS += $(LIB_VISIBILITY)

$(BUILD)/$(1)/obj/ioengine/%.o: ioengine/%.c $(FIO_STAMP) | $(DEPS_STAMP)
	@mkdir -p $$(@D)
	$(SAN_CC) $$(ALL_CFLAGS) $(SAN_COMMON) $(SAN_CFLAGS_$(1)) $$(ENGINE_CPPFLAGS) -c -o $$@ $$<

$(BUILD)/$(1)/libxdevice.so: $(LIB_OBJS:$(BUILD)/obj/%=$(BUILD)/$(1)/obj/%)
	$(SAN_CC) -shared -Wl,-soname,$(SO_NAME) $(SAN_CFLAGS_$(1)) $$(LDFLAGS) -o $$@ $$^ $(LIBS)

$(BUILD)/$(1)/xdevice.so: $(ENGINE_OBJS:$(BUILD)/obj/%=$(BUILD)/$(1)/obj/%) $(LIB_OBJS:$(BUILD)/obj/%=$(BUILD)/$(1)/obj/%)
	$(SAN_CC) -shared -rdynamic -Wl,-z,nodelete $(SAN_CFLAGS_$(1)) $$(LDFLAGS) -o $$@ $$^ $(LIBS)
endef
$(foreach s,$(SANITIZERS),$(eval $(call SANITIZER_RULES,$(s))))

SAN_TARGETS := $(foreach s,$(SANITIZERS),$(BUILD)/$(s)/libxdevice.so $(BUILD)/$(s)/xdevice.so)

# Needs build/xdconfig for the live reload runs. SANITIZE_ONLY=asan|tsan runs
# one; the script's header lists its other knobs.
.PHONY: sanitize
sanitize: $(SAN_TARGETS) $(BUILD)/xdconfig
	CC=$(SAN_CC) PYTHONDONTWRITEBYTECODE=1 $(PYTHON) tests/sanitize/sanitize.py $(BUILD)

# --- torture ------------------------------------------------------------------

# Long loops of the crash tests that `make test` runs a few rounds of:
# TORTURE_ROUNDS rounds of kill -9 under hybrid write-back with migration.
TORTURE_ROUNDS ?= 50
# kill -9 at random moments on every type, layer, async mode and job layout:
# fio's trigger workflow beside fio's own engine (scripts/crash-sweep.py,
# about 12 minutes), then a library writer killed after its fsyncs
# (tests/kill9_fsync.c through scripts/crash-kill9.sh, CRASH_ROUNDS rounds
# per case).
CRASH_ROUNDS ?= 10
.PHONY: torture-crash
torture-crash: all $(BUILD)/tests/kill9_fsync
	$(PYTHON) scripts/crash-sweep.py
	KILL9=$(BUILD)/tests/kill9_fsync scripts/crash-kill9.sh $(CRASH_ROUNDS)

$(BUILD)/tests/kill9_fsync: tests/kill9_fsync.c $(BUILD)/libxdevice.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libxdevice.a $(LIBS)

# make torture's random jobs over the ASan+UBSan engine (make sanitize's
# build/asan), the runtime preloaded into fio; TORTURE_* as for torture.
.PHONY: torture-asan
torture-asan: all $(BUILD)/asan/xdevice.so
	CC=$(SAN_CC) PYTHON=$(PYTHON) scripts/torture-asan.sh $(BUILD)

.PHONY: torture-hybrid
torture-hybrid: all
	XD_TORTURE_ROUNDS=$(TORTURE_ROUNDS) PYTHONDONTWRITEBYTECODE=1 $(PYTHON) -m pytest -q -rs \
	  -p no:cacheprovider tests/e2e/test_hybrid.py -k kill_9

# --- other -------------------------------------------------------------------

bench: all
	bash scripts/bench.sh

.PHONY: bench-targets
bench-targets: all
	bash scripts/bench-targets.sh

perf: all
	bash scripts/perf.sh

# Same-run A/B check of the working tree against BASE=<git ref> (default
# HEAD, built into build/base) or BASELINE=<results dir>. The script exits
# 0 clean, 1 regression, 3 inconclusive after its confirmation runs, 2
# broken; make can only fail (exit 2), so a line names which, and CI
# that tells 1 from 3 runs scripts/regress.sh itself. Knobs (REGRESS_REPS,
# REGRESS_CONFIRM, ...): scripts/regress.sh.
.PHONY: regress regress-selftest
regress: all $(BUILD)/xdreport
	@rc=0; bash scripts/regress.sh || rc=$$?; \
	case $$rc in 0) ;; 1) echo "make regress: exit 1: a regression" >&2 ;; \
	3) echo "make regress: exit 3: inconclusive after the confirmation runs" >&2 ;; \
	*) echo "make regress: exit $$rc: the check could not run" >&2 ;; esac; exit $$rc

# The gate's own proof, on real runs (a few minutes): a build slowed by 20%
# is caught (exit 1) and an A/A run is clean (exit 0). make test runs only
# the quick parts of tests/e2e/test_regress.py.
regress-selftest: all $(BUILD)/xdreport
	XD_REGRESS_SELFTEST=1 PYTHONDONTWRITEBYTECODE=1 $(PYTHON) -m pytest -q -rsxP -p no:cacheprovider --durations=0 \
		tests/e2e/test_regress.py

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJS:.o=.d) $(ENGINE_OBJS:.o=.d) $(foreach s,$(SANITIZERS),$(LIB_OBJS:$(BUILD)/obj/%.o=$(BUILD)/$(s)/obj/%.d) $(ENGINE_OBJS:$(BUILD)/obj/%.o=$(BUILD)/$(s)/obj/%.d)) $(REPORT_OBJS:.o=.d) $(COMMON_OBJS:.o=.d) $(TUNER_OBJS:.o=.d) $(UNIT_BINS:=.d)
