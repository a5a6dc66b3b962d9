# Top-level entry points. On a fresh Debian 12 machine, as root:
#   make run    # install dependencies, build, start analyticsd on SQLite
#   make test   # install dependencies, build, run every test
SHELL := /bin/bash

BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
LISTEN ?= 127.0.0.1:8000
STORE ?= sqlite://./data/analytics.db
MMDB ?= third_party/mmdb/geo-whois-asn-country.mmdb

.PHONY: all setup configure build run test test-asan test-tsan fuzz format clean

all: build

setup:
	@scripts/setup.sh

configure: setup
	@if [ ! -f $(BUILD_DIR)/build.ninja ]; then \
	  cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE); \
	fi

build: configure
	cmake --build $(BUILD_DIR) -j$(JOBS)

run: build
	@mkdir -p data
	$(BUILD_DIR)/bin/analyticsd --store '$(STORE)' --listen '$(LISTEN)' \
	  $(if $(wildcard $(MMDB)),--geoip $(MMDB))

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j2

# Every libFuzzer target (clang, ASan+UBSan) for FUZZ_SECONDS each (default
# 60); `make test` runs a 10 s pass as the CTest entry fuzz_short.
FUZZ_SECONDS ?= 60
# Entries left out of the sanitizer runs: the fuzz pass (its own sanitized
# build) and the Python ones (an ASan extension cannot load into the system
# python without LD_PRELOAD of the runtime).
SANITIZER_EXCLUDE ?= fuzz_short|python_|example_python
fuzz: setup
	fuzz/run.sh --seconds $(FUZZ_SECONDS)

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer. The
# quarantine (freed memory kept poisoned to catch use-after-free) is 32 MiB
# instead of 256 so that the soak and overload memory bounds stay meaningful.
test-asan: setup
	@if [ ! -f build-asan/build.ninja ]; then \
	  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DANALYTICS_SANITIZE=address; \
	fi
	cmake --build build-asan -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=32 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions=$(CURDIR)/fuzz/ubsan.supp \
	  scripts/sanitized-ctest.sh build-asan --output-on-failure -j2 \
	    -E '$(SANITIZER_EXCLUDE)'

# The concurrent parts (engine pipeline and group commit, stores,
# coordinators, the in-process cluster, and analyticsd itself under HTTP
# load, kill -9, overload and as 3 workers running jobs) under ThreadSanitizer
# (not the balancer cluster tests: their failover deadlines assume full
# speed, and TSan runs the workers several times slower), linked against an
# Abseil built with TSan (scripts/absl-tsan.sh: the packaged one is not
# instrumented, so absl::Mutex would look like no synchronisation at all).
TSAN_TESTS ?= Engine|engine_cluster|store_conformance|coordinator_conformance|Coordinator|Sessionizer|Jobs|^http_test$$|^reliability_crash_sqlite_test$$|^reliability_overload_test$$|^jobs_cluster_test$$
TSAN_ABSL := $(CURDIR)/build-tsan-absl
test-tsan: setup
	scripts/absl-tsan.sh $(TSAN_ABSL)
	cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DANALYTICS_SANITIZE=thread -Dabsl_DIR=$(TSAN_ABSL)/lib/cmake/absl >/dev/null
	cmake --build build-tsan -j$(JOBS)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp \
	  scripts/sanitized-ctest.sh build-tsan --output-on-failure -j2 \
	    -R '$(TSAN_TESTS)'

format:
	@find . \( -path './build*' -o -path '*/node_modules' -o -path './.git' \
	  -o -path './third_party' \) -prune -o \
	  -type f \( -name '*.cc' -o -name '*.h' \) -print0 | \
	  xargs -0 -r clang-format -i

clean:
	rm -rf $(BUILD_DIR)
