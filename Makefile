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

.PHONY: all setup configure build run test format clean

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

format:
	@find . \( -path './build*' -o -path '*/node_modules' -o -path './.git' \
	  -o -path './third_party' \) -prune -o \
	  -type f \( -name '*.cc' -o -name '*.h' \) -print0 | \
	  xargs -0 -r clang-format -i

clean:
	rm -rf $(BUILD_DIR)
