# ssehub build. `make` builds build/ssehub; `make run` and `make test` also install what is missing.
CC ?= cc
CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Werror
# src/ holds one directory per layer (docs/internals.md, "Files"); each is on the include path.
LAYER_DIRS := $(patsubst %/,%,$(sort $(wildcard src/*/)))
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE $(LAYER_DIRS:%=-I%) -Ibuild/gen $(WARN) -MMD -MP
LDLIBS := -lev -lhttp_parser -ljansson -ljwt -lsqlite3 -lhiredis -lssl -lcrypto -lsodium -lpthread
SAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

SRCS := $(sort $(wildcard src/*/*.c)) src/main.c
LIB_SRCS := $(filter-out src/main.c,$(SRCS))
OBJS := $(SRCS:src/%.c=build/obj/%.o) build/obj/assets.o
LIB_OBJS := $(LIB_SRCS:src/%.c=build/obj/%.o) build/obj/assets.o
ASAN_OBJS := $(SRCS:src/%.c=build/asan/obj/%.o) build/asan/obj/assets.o
ASAN_LIB_OBJS := $(filter-out build/asan/obj/main.o,$(ASAN_OBJS))

ASSETS := /example:text/html;charset=utf-8:web/example.html \
          /client/sse-client.js:text/javascript;charset=utf-8:web/sse-client.js \
          /client/sse-client.mjs:text/javascript;charset=utf-8:web/sse-client.mjs
ASSET_FILES := web/example.html web/sse-client.js web/sse-client.mjs

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/tests/%)
ASAN_UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/asan/tests/%)

SSEHUB_WORKERS ?=

.PHONY: install all run test setup setup-test unit e2e browser asan test-asan clean format env check-layers

all: build/ssehub

build/ssehub: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

build/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -c -o $@ $<

build/gen/assets.c: $(ASSET_FILES) scripts/embed-assets.sh
	@mkdir -p $(@D)
	scripts/embed-assets.sh $(foreach a,$(ASSETS),'$(a)') > $@.tmp && mv $@.tmp $@

build/obj/assets.o: build/gen/assets.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -c -o $@ $<

build/libssehub.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

build/tests/%: tests/unit/%.c build/libssehub.a
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -o $@ $< build/libssehub.a $(LDLIBS) -lcriterion

# The same code built with AddressSanitizer and UndefinedBehaviorSanitizer.
build/asan/ssehub: $(ASAN_OBJS)
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

build/asan/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) -c -o $@ $<

build/asan/obj/assets.o: build/gen/assets.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) -c -o $@ $<

build/asan/libssehub.a: $(ASAN_LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

build/asan/tests/%: tests/unit/%.c build/asan/libssehub.a
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) -o $@ $< build/asan/libssehub.a $(LDLIBS) -lcriterion

setup:
	@scripts/setup.sh run

setup-test:
	@scripts/setup.sh test

# A .env with fresh secrets on first run, then the server in the foreground.
run: setup
	@$(MAKE) --no-print-directory build/ssehub
	@scripts/make-env.sh
	./build/ssehub

unit: $(UNIT_BINS)
	@for t in $(UNIT_BINS); do echo "== $$t"; $$t --jobs 2 || exit 1; done

# SSEHUB_WORKERS sets SSE_WORKERS for every server the suites start (default: one per core).
e2e: build/ssehub
	SSEHUB_WORKERS=$(SSEHUB_WORKERS) node --test --test-concurrency=1 tests/e2e/

browser: build/ssehub
	SSEHUB_WORKERS=$(SSEHUB_WORKERS) node --test --test-concurrency=1 tests/browser/

# No file includes a header of a higher layer (docs/internals.md, "Files"); the script's own test first.
check-layers:
	@scripts/check-layers.sh --self-test
	@scripts/check-layers.sh src

# Criterion counts a test as passed even when a sanitizer reported in it: read the reports too.
test-asan: build/asan/ssehub $(ASAN_UNIT_BINS)
	@mkdir -p build/asan/logs
	@for t in $(ASAN_UNIT_BINS); do echo "== $$t"; \
	  $$t --jobs 2 > build/asan/logs/$$(basename $$t).log 2>&1; rc=$$?; cat build/asan/logs/$$(basename $$t).log; \
	  [ $$rc -eq 0 ] || exit 1; \
	  if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' build/asan/logs/$$(basename $$t).log; then \
	    echo "sanitizer report in $$t"; exit 1; fi; done
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	SSEHUB_WORKERS=1 SSEHUB_BIN=$(CURDIR)/build/asan/ssehub node --test --test-concurrency=1 tests/e2e/

# Every suite: e2e with 4 workers here and with 1 under the sanitizers, so both shapes are covered.
# The layer check comes first: it needs nothing installed.
test: check-layers setup-test
	@$(MAKE) --no-print-directory build/ssehub build/ssebench $(UNIT_BINS)
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory e2e SSEHUB_WORKERS=4
	@$(MAKE) --no-print-directory browser
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory fuzz-smoke
	@$(MAKE) --no-print-directory bench-quick

PREFIX ?= /usr/local
install: build/ssehub
	install -D -m 0755 build/ssehub $(DESTDIR)$(PREFIX)/bin/ssehub

format:
	clang-format -i src/main.c src/*/*.c src/*/*.h tests/unit/*.c

clean:
	rm -rf build

include bench/Makefile.inc
include tests/fuzz/Makefile.inc

-include $(OBJS:.o=.d) $(ASAN_OBJS:.o=.d)
