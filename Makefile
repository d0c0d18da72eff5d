# EasyJournal: one Makefile. `make run` and `make test` are the two commands a newcomer needs.
#
# Layout of the build: build/ (or build-san/ with SANITIZE=...) holds objects, the generated
# protobuf-c code is in proto/gen/, binaries in $(BUILD)/bin.

SANITIZE ?=
ifeq ($(SANITIZE),)
BUILD ?= build
SANFLAGS :=
else
BUILD ?= build-san
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

CC ?= cc
# The libraries come from deploy/packages.txt (pkg-config module and the Debian package that
# ships it). Each is checked on its own, so that a missing one stops the build with its name and
# the command that installs it, not with empty flags and a puzzling compiler error later. Goals
# that need no library skip the check; run, test and bench install first (deps), then check in
# their inner `make all`.
PKG_ROWS := $(shell deploy/packages.sh --modules | tr ' ' ':')
PKGS := $(foreach r,$(PKG_ROWS),$(firstword $(subst :, ,$(r))))
NO_LIB_GOALS := deps clean format format-check run stop test bench sanitize apidocs
ifneq ($(filter-out $(NO_LIB_GOALS),$(or $(MAKECMDGOALS),all)),)
ifeq ($(PKG_ROWS),)
$(error deploy/packages.txt names no pkg-config module)
endif
ifeq ($(shell command -v pkg-config),)
$(error pkg-config not found; install it with: sudo apt-get install -y pkg-config (or make deps))
endif
pkg_require = $(if $(shell pkg-config --exists $(1) && echo ok),,$(error pkg-config finds no \
  $(1); install it with: sudo apt-get install -y $(2) (or make deps)))
$(foreach r,$(PKG_ROWS),$(call pkg_require,$(word 1,$(subst :, ,$(r))),$(word 2,$(subst :, ,$(r)))))
endif
WARN := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wpointer-arith -Wcast-qual -Wformat=2 -Wvla -fno-common
HARDEN := -fstack-protector-strong -D_FORTIFY_SOURCE=2
OPT ?= -O2 -g
CPPFLAGS := -D_GNU_SOURCE -Iservices/common -isystem proto/gen -isystem $(BUILD)/gen
CFLAGS := $(WARN) $(HARDEN) $(OPT) $(SANFLAGS) -MMD -MP \
          $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
LDFLAGS := $(SANFLAGS) -Wl,--as-needed

PROTOS := $(wildcard proto/*.proto)
PB_C := $(patsubst proto/%.proto,proto/gen/%.pb-c.c,$(PROTOS))
PB_H := $(PB_C:.c=.h)
PB_O := $(patsubst proto/gen/%.c,$(BUILD)/proto/%.o,$(PB_C))

COMMON_SRC := $(wildcard services/common/*.c)
COMMON_O := $(patsubst %.c,$(BUILD)/%.o,$(COMMON_SRC))
COMMON_LIB := $(BUILD)/libej_common.a

SERVICES := $(notdir $(patsubst %/main.c,%,$(wildcard services/*/main.c)))
SERVICE_BINS := $(addprefix $(BUILD)/bin/ej-,$(SERVICES))
GATEWAY_SRC := $(wildcard gateway/*.c)
GATEWAY_O := $(patsubst %.c,$(BUILD)/%.o,$(GATEWAY_SRC))
GATEWAY_BIN := $(BUILD)/bin/ej-gateway

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
# Fuzz targets (tests/fuzz, see `make fuzz` below), each also a unit test replaying its seeds.
FUZZ_TARGETS ?= $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY_BINS := $(addprefix $(BUILD)/tests/test_fuzz_,$(FUZZ_TARGETS))
# tools/*.c serve the local stack (the dev mail catcher), tests/tools/*.c only the tests; both
# land in $(BUILD)/bin.
TOOL_SRC := $(wildcard tools/*.c tests/tools/*.c)
TOOL_BINS := $(addprefix $(BUILD)/bin/,$(basename $(notdir $(TOOL_SRC))))
# The floor probes (tests/bench/floor/): bare libmicrohttpd and a bare HTTP -> NATS -> PostgreSQL
# read, which `make bench` measures beside the gateway in the same run.
FLOOR_BINS := $(addprefix $(BUILD)/bench/,floor_hello floor_gateway floor_service)

# The API reference page (/api/docs) renders /api/openapi.json with Swagger UI, whose prebuilt
# files are copied from npm (gateway/apidocs/package.json, locked) into the web root's vendor/
# directory: served by the gateway like the app's own files, never from a CDN, not committed.
# `make apidocs` does only that (needs node and npm, no C library): the gateway image's web stage.
APIDOCS_DIST := gateway/apidocs/node_modules/swagger-ui-dist
APIDOCS_VENDOR := $(addprefix gateway/web/vendor/swagger-ui/,swagger-ui-bundle.js swagger-ui.css \
                  LICENSE NOTICE)

CSRC_FORMAT := $(shell git ls-files '*.c' '*.h' 2>/dev/null | grep -v '^proto/gen/')

.PHONY: all deps run stop test test-unit test-system test-browser test-fault bench sanitize \
        format format-check clean proto apidocs
.DEFAULT_GOAL := all
.SECONDEXPANSION:
# Generated sources are kept, not treated as intermediates.
.SECONDARY:

all: $(GATEWAY_BIN) $(SERVICE_BINS) $(UNIT_BINS) $(FUZZ_REPLAY_BINS) $(TOOL_BINS) $(FLOOR_BINS) \
     $(APIDOCS_VENDOR)

# Installs the Debian packages the build, the stack and the tests need (apt-get as root;
# otherwise prints the one command to run).
deps:
	@tools/install-deps.sh

proto: $(PB_C)

apidocs: $(APIDOCS_VENDOR)

$(APIDOCS_DIST)/package.json: gateway/apidocs/package.json gateway/apidocs/package-lock.json
	cd gateway/apidocs && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

gateway/web/vendor/swagger-ui/%: $(APIDOCS_DIST)/package.json
	install -D -m 0644 $(APIDOCS_DIST)/$* $@

proto/gen/%.pb-c.c proto/gen/%.pb-c.h: proto/%.proto
	@mkdir -p proto/gen
	protoc-c --c_out=proto/gen -Iproto $<

$(BUILD)/proto/%.o: proto/gen/%.c $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(filter-out -Wcast-qual,$(CFLAGS)) -w -c $< -o $@

$(BUILD)/%.o: %.c $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(COMMON_LIB): $(COMMON_O) $(PB_O)
	@rm -f $@
	ar rcs $@ $^

# Each service embeds its numbered migrations (services/<svc>/schema/NNN_*.sql) at build time.
$(BUILD)/gen/%_schema.c: tools/embed-sql.sh $$(wildcard services/$$*/schema/*.sql)
	@mkdir -p $(dir $@)
	tools/embed-sql.sh $* services/$*/schema > $@

$(BUILD)/bin/ej-%: $$(addprefix $(BUILD)/,$$(addsuffix .o,$$(basename $$(wildcard services/$$*/*.c)))) \
                   $(BUILD)/gen/%_schema.o $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(GATEWAY_BIN): $(GATEWAY_O) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Every unit test links the shared service test harness (tests/unit/harness.h).
TEST_HARNESS_O := $(BUILD)/tests/harness.o
$(TEST_HARNESS_O): tests/unit/harness.c tests/unit/harness.h $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/tests/%: tests/unit/%.c $(TEST_HARNESS_O) $(COMMON_LIB) $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Igateway $(CFLAGS) -o $@ $< $(TEST_HARNESS_O) $(COMMON_LIB) $(LDFLAGS) $(LDLIBS)

$(BUILD)/bin/%: tools/%.c $(COMMON_LIB) $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(COMMON_LIB) $(LDFLAGS) $(LDLIBS)

$(BUILD)/bin/%: tests/tools/%.c $(COMMON_LIB) $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(COMMON_LIB) $(LDFLAGS) $(LDLIBS)

$(BUILD)/gen/floor.pb-c.c $(BUILD)/gen/floor.pb-c.h: tests/bench/floor/floor.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -Itests/bench/floor $<

$(BUILD)/bench/floor.pb-c.o: $(BUILD)/gen/floor.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(filter-out -Wcast-qual,$(CFLAGS)) -w -c $< -o $@

$(BUILD)/bench/%: tests/bench/floor/%.c $(BUILD)/bench/floor.pb-c.o
	$(CC) $(CPPFLAGS) -I$(BUILD)/gen $(CFLAGS) -o $@ $< $(BUILD)/bench/floor.pb-c.o $(LDFLAGS) \
	    $(LDLIBS)

# The JSON <-> protobuf transcoder is tested on its own messages (tests/unit/pbjson_test*.proto),
# generated into $(BUILD)/gen and #included by its unit test and fuzz target only, so they stay
# out of the common library (which is built from proto/*.proto).
PBJSON_TEST_PB := $(BUILD)/gen/pbjson_test.pb-c.c $(BUILD)/gen/pbjson_test_p2.pb-c.c
$(BUILD)/gen/%.pb-c.c: tests/unit/%.proto
	@mkdir -p $(dir $@)
	protoc-c --c_out=$(BUILD)/gen -Itests/unit $<
$(BUILD)/gen/pbjson_test.pb-c.c: $(BUILD)/gen/pbjson_test_p2.pb-c.c
$(BUILD)/tests/test_pbjson: $(PBJSON_TEST_PB)

# Fuzz targets (tests/fuzz/fuzz_<target>.c, seeds in tests/fuzz/<target>/). `make all` builds
# each with the regular compiler and tests/fuzz/replay.c as the unit test test_fuzz_<target>,
# which runs it over its seeds, so the targets never rot. `make fuzz` (not part of `make test`)
# builds them with libFuzzer, address and undefined sanitizers (clang) under $(BUILD)/fuzz/ and
# runs each for FUZZ_SECONDS seconds (FUZZ_TARGETS: a subset), printing executions and coverage;
# the corpus grows under $(BUILD)/fuzz/corpus/<target>. The gateway's code is linked from an
# archive without main.o, so a target may #include a gateway source to reach its static parts.
FUZZ_SECONDS ?= $(or $(FUZZ_TIME),30)
FUZZ_CC ?= clang
FUZZ_DIR := $(BUILD)/fuzz
GATEWAY_LIB := $(BUILD)/libej_gateway.a
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 -g -O1 $(FUZZ_SAN) -MMD -MP $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_COMMON_O := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(COMMON_SRC)) \
                 $(patsubst proto/gen/%.c,$(FUZZ_DIR)/obj/proto/%.o,$(PB_C))
FUZZ_GATEWAY_O := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(filter-out gateway/main.c,$(GATEWAY_SRC)))
.PHONY: fuzz

$(GATEWAY_LIB): $(filter-out $(BUILD)/gateway/main.o,$(GATEWAY_O))
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tests/replay.o: tests/fuzz/replay.c tests/fuzz/fuzz.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/tests/test_fuzz_%: tests/fuzz/fuzz_%.c $(BUILD)/tests/replay.o $(GATEWAY_LIB) \
                            $(COMMON_LIB) $(PB_H) $(PBJSON_TEST_PB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Igateway -Itests/fuzz $(CFLAGS) -o $@ $< $(BUILD)/tests/replay.o \
	    $(GATEWAY_LIB) $(COMMON_LIB) $(LDFLAGS) $(LDLIBS)

$(FUZZ_DIR)/obj/proto/%.o: proto/gen/%.c $(PB_H)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -w -c $< -o $@

$(FUZZ_DIR)/obj/%.o: %.c $(PB_H)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/libcommon.a: $(FUZZ_COMMON_O)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/libgateway.a: $(FUZZ_GATEWAY_O)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libgateway.a $(FUZZ_DIR)/libcommon.a \
                    $(PB_H) $(PBJSON_TEST_PB)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) -Igateway -Itests/fuzz $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< \
	    $(FUZZ_DIR)/libgateway.a $(FUZZ_DIR)/libcommon.a $(LDLIBS)

fuzz: $(addprefix $(FUZZ_DIR)/fuzz_,$(FUZZ_TARGETS))
	@FUZZ_DIR=$(FUZZ_DIR) FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_TARGETS)

# Builds, starts PostgreSQL, nats-server, every service and the gateway with a demo journal on
# http://127.0.0.1:8080, and stays in the foreground with all logs. Ctrl-C stops everything.
run: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) EJ_DEMO=$${EJ_DEMO:-true} EJ_DEV_MAIL=$${EJ_DEV_MAIL:-true} deploy/local/stack.sh run

# Stops a stack left running by `make run`.
stop:
	@deploy/local/stack.sh stop

# Everything CI checks, ending with one line "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) SANITIZE=$(SANITIZE) tests/run-all.sh

test-unit: all
	@BUILD=$(BUILD) tests/run-all.sh unit

test-system: all
	@BUILD=$(BUILD) tests/run-all.sh system

test-browser: all
	@BUILD=$(BUILD) tests/run-all.sh browser

test-fault: all
	@BUILD=$(BUILD) tests/run-all.sh fault

# Speed and memory measurements (not part of `make test`).
bench: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) tests/bench/run.sh

sanitize:
	@$(MAKE) --no-print-directory test SANITIZE=address,undefined

format:
	clang-format -i $(CSRC_FORMAT)

format-check:
	@clang-format --dry-run --Werror $(CSRC_FORMAT) && echo "format-check: ok"

clean:
	rm -rf build build-san proto/gen gateway/web/vendor

-include $(shell find $(BUILD) -name '*.d' -not -path '$(BUILD)/bin/*' 2>/dev/null)
