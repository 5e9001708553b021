# Convenience front-end; the real work is in scripts/ (usable without make).
#   make demo       install deps, build, start gateway + agent + client on loopback, fetch a page
#   make demo-stop  stop the demo started by `make demo`
#   make test       the whole test suite (same as scripts/test.sh and .ci/run)
#   make build      configure + build into ./build
#   make bench      benchmark nl next to the baselines (tests/bench/run.sh; minutes)
#   make bench-tun  benchmark nl-client tun and the netstack alone (root; tests/bench/tun_bench.py)
#   make fuzz       run the libFuzzer targets (FUZZ_SECS seconds each)
#   make clean      remove build/ and the demo state

FUZZ_SECS ?= 60

.PHONY: all demo demo-stop test build bench bench-tun fuzz clean

all: build

demo:
	scripts/demo.sh

demo-stop:
	scripts/demo.sh stop

test:
	scripts/test.sh

build:
	scripts/build.sh

bench: build
	tests/bench/run.sh

bench-tun: build
	tests/bench/tun_bench.py

fuzz:
	@if [ -f scripts/fuzz.sh ]; then bash scripts/fuzz.sh $(FUZZ_SECS); \
	else echo "scripts/fuzz.sh not present"; exit 1; fi

clean:
	-scripts/demo.sh stop
	rm -rf build demo-run
