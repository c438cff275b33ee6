# l2xdp: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
FUZZ_SECONDS ?= 600
FUZZ_TARGETS := control_message data_header ppp_frame radius_packet
FUZZ_STATE_TARGETS := node
# Operation sequences: long inputs from the start (libFuzzer would grow the limit slowly).
FUZZ_STATE_ARGS := -max_len=2048 -len_control=0 -timeout=20

.PHONY: all setup build test lint fmt run fuzz fuzz-cmin clean kernel-matrix

all: build

setup:
	@bash scripts/setup.sh

build:
	$(CARGO) build --workspace --all-targets

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Set-up, then every test (scripts/test.sh). The wire tests run tshark for real
# (L2XDP_REQUIRE_TSHARK=1 makes a missing tshark a failure, not a skip).
test: setup lint
	@bash scripts/test.sh

# The main job: build everything (release), then the demo (bench/src/demo.rs, as root): a lab on
# veth namespaces with a built-in default config — the XDP fast path and l2xdpd in the LNS
# namespace, the LAC emulator bringing up 200 PPP sessions, traffic both ways with a live view, a
# kill -9 failover drill — and everything removed at the end or on Ctrl-C. Exits 0 only if it all
# worked. Options: make run RUN_ARGS="--tunnels 10 --sessions 100 --seconds 10 --config FILE"
# (l2xdp-bench demo --help).
RUN_ARGS ?=
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
run: setup
	$(CARGO) build --release --workspace --bins
	@$(TARGET_DIR)/release/l2xdp-bench demo $(RUN_ARGS)

# Fuzz every target for FUZZ_SECONDS each: the parsers (wire/fuzz) and the state machines
# (controlplane/fuzz: a Node in both roles, bounds checked after every operation; its corpus is
# kept in controlplane/fuzz/corpus/node). cargo-fuzz needs nightly features: the nightly
# toolchain when installed, stable with RUSTC_BOOTSTRAP=1 otherwise; built optimized with debug
# assertions (overflow checks), cargo-fuzz's default. One group only:
# make fuzz FUZZ_GROUPS=controlplane; more libFuzzer flags in FUZZ_ARGS (e.g. -jobs=2 -workers=2).
# L2XDP_FUZZ_FLOOD_BOUNDS=0 in the environment turns off the state target's two flood bounds
# (sender map, tunnels left by rejected SCCRQs: issue 15), to look for other failures only.
FUZZ_GROUPS ?= wire controlplane
FUZZ_ARGS ?=
FUZZ_TOOLCHAIN := $(shell rustup toolchain list 2>/dev/null | grep -q '^nightly' && echo +nightly)
FUZZ_CARGO := RUSTC_BOOTSTRAP=1 $(CARGO) $(FUZZ_TOOLCHAIN)
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz
	@for g in $(FUZZ_GROUPS); do \
	  case $$g in wire) targets="$(FUZZ_TARGETS)"; args="";; controlplane) targets="$(FUZZ_STATE_TARGETS)"; args="$(FUZZ_STATE_ARGS)";; *) echo "unknown fuzz group $$g"; exit 1;; esac; \
	  for t in $$targets; do \
	    (cd $$g && mkdir -p fuzz/corpus/$$t && $(FUZZ_CARGO) fuzz run $$t -- \
	      -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$args $(FUZZ_ARGS)) || exit 1; \
	  done; \
	done

# Shrinks the state-machine corpus to the inputs that keep its coverage (run before committing it).
fuzz-cmin:
	cd controlplane && $(FUZZ_CARGO) fuzz cmin node

# Boots stock Debian kernels (bullseye 5.10, bookworm 6.1, trixie 6.12) under qemu and runs the
# probe, the demo and the fast-path tests inside each (scripts/kernel-matrix.sh; README "Kernel
# matrix"). Slow (TCG when KVM does not work: tens of minutes a kernel), so not part of `make
# test`. Settings through the environment, e.g. make kernel-matrix KM_KERNELS="bookworm trixie".
kernel-matrix:
	@bash scripts/kernel-matrix.sh

clean:
	$(CARGO) clean
