# SPDX-License-Identifier: Apache-2.0
# The two commands of the README:  make run  |  make test
# Everything else here is what those two are made of.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 20
CMAKE_FLAGS ?=
export CCACHE_DIR ?= $(HOME)/.cache/ccache

.PHONY: deps build run test test-asan test-main fuzz fuzz-long bench clean format

deps:
	@scripts/install-deps

$(BUILD)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONFAB_WERROR=ON $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# Starts confabd in the foreground with the embedded default (./var, 8443/8080).
run: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS) --target confabd
	exec $(BUILD)/bin/confabd

test: deps
	@scripts/run-tests

test-main: build
	cd $(BUILD) && ctest --output-on-failure -j 2 --timeout 300

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DCONFAB_SANITIZE=ON -DCONFAB_WERROR=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure -j 2 --timeout 600 -L 'unit|integration'

fuzz: deps
	FUZZ_SECONDS=600 scripts/run-fuzz

bench: deps
	@scripts/install-deps --bench
	@bench/run

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')
