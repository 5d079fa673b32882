# temel — the two set-up commands (README):
#   make run    install deps, build, migrate, load demo data, start on 127.0.0.1:8080 (SQLite at data/temel.db)
#   make test   install deps, build release + ASan/UBSan, run every test
# Plain `make` builds build/temel.

MESON ?= meson
NINJA ?= ninja
PY    := /usr/bin/python3
FUZZ_SECONDS ?= 30

.PHONY: all deps build asan run test unit api-sqlite api-postgres api-asan fuzz fuzz-build bench bench-runtime clean

all: build

deps:
	@./scripts/deps.sh
	@./scripts/node-deps.sh

build/build.ninja:
	@$(MESON) setup build --buildtype=release >/dev/null

build: build/build.ninja
	@$(NINJA) -C build

build-asan/build.ninja:
	@$(MESON) setup build-asan --buildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false >/dev/null

asan: build-asan/build.ninja
	@$(NINJA) -C build-asan

run: deps build
	@mkdir -p data
	./build/temel migrate up
	./build/temel seed
	./build/temel serve

unit: build
	@$(MESON) test -C build --print-errorlogs -q

api-sqlite: build
	@tests/api/run.sh sqlite

api-postgres: build
	@tests/api/run.sh postgres

api-asan: asan
	@TEMEL_BIN=build-asan/temel TEMEL_ASAN=1 tests/api/run.sh sqlite

build-fuzz/build.ninja:
	@CC=clang $(MESON) setup build-fuzz --buildtype=debugoptimized -Dfuzz=true -Db_lundef=false >/dev/null

fuzz-build: build-fuzz/build.ninja
	@$(NINJA) -C build-fuzz

fuzz: fuzz-build
	@tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

test: deps build asan fuzz-build
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory api-sqlite
	@$(MAKE) --no-print-directory api-postgres
	@$(MAKE) --no-print-directory api-asan
	@$(MAKE) --no-print-directory fuzz
	@echo "make test: all green"

bench: deps build
	@bench/run.sh

# issue 10's workload on SQLite and PostgreSQL vs nginx and pgbench (bench/runtime.sh; ~10 min)
bench-runtime: deps build
	@bench/runtime.sh

clean:
	rm -rf build build-asan build-fuzz
