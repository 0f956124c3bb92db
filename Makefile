# Chat backend: local development and CI entry points. The work is done by scripts/stack.sh
# (deps, build, the PostgreSQL + chat-fcgi + nginx stack) and scripts/test.sh.
#
#   make run     deps, build, start the stack in the foreground; Ctrl-C stops all of it
#   make stop    stop the stack (when it was started with `scripts/stack.sh up`)
#   make build   swift build -c release
#   make test    deps, build, throwaway stack on free ports, swift test, make fuzz's run, teardown
#   make fuzz    deps, build, throwaway stack on free ports, scripts/fuzz.sh (schemathesis), teardown;
#                on a running stack: scripts/fuzz.sh (STACK_DIR … or the CHAT_TEST_* variables)
#   make bench   scripts/bench.sh
#   make clean   stop the stack, remove .build (the stack's data in .data is kept)
#
# The stack honours STACK_DIR, HTTP_PORT, HTTPS_PORT, PG_PORT, WORKERS, THREADS (see stack.sh).
# Extra arguments for swift test: make test TEST_ARGS='--filter IntegrationTests' (FUZZ=0: no fuzz run)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
# The toolchain: the swift on PATH, else the machine's /opt/swift.
ifeq ($(shell command -v swift 2>/dev/null),)
ifneq ($(wildcard /opt/swift/usr/bin/swift),)
export PATH := /opt/swift/usr/bin:$(PATH)
endif
endif
STACK := $(ROOT)/scripts/stack.sh
TEST_ARGS ?=
BENCH_ARGS ?=

.DEFAULT_GOAL := build
.PHONY: run stop build test fuzz bench clean deps up down status reload env

deps:
	$(STACK) deps

build:
	$(STACK) build

# `foreground` runs `up`, waits, and runs `down` on Ctrl-C / SIGTERM / hangup (or when the app
# dies). The daemons run in their own sessions, so Ctrl-C reaches only that script, which then
# stops them in order (nginx, chat-fcgi, PostgreSQL).
run: deps build
	$(STACK) foreground

up:
	$(STACK) up

stop down:
	$(STACK) down

status:
	$(STACK) status

reload:
	$(STACK) reload

env:
	@$(STACK) env

test:
	$(ROOT)/scripts/test.sh $(TEST_ARGS)

fuzz:
	FUZZ_ONLY=1 $(ROOT)/scripts/test.sh

bench:
	bash $(ROOT)/scripts/bench.sh $(BENCH_ARGS)

clean:
	$(STACK) down
	rm -rf $(ROOT)/.build
