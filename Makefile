# disttrain: `make demo` trains cluster/fashion-mnist.json; `make test` runs the whole test suite.
# Both install what is missing first (as root) or print the exact command to run (otherwise).

SWIFT ?= swift
# Build directory (SwiftPM's --scratch-path); builds that must not share one can set another.
SCRATCH ?= .build
DEBIAN_PACKAGES := libopenmpi-dev openmpi-bin libopenblas-dev libhdf5-dev libturbojpeg0-dev libpng-dev zlib1g-dev librsvg2-bin pkg-config dataset-fashion-mnist
XCTEST := $(SCRATCH)/release/disttrainPackageTests.xctest
# Test classes that need several ranks; each runs under `mpirun -n 2` and `mpirun -n 3`
# (comma-separated, as the xctest runner takes them).
MULTI_RANK_TESTS := DistTrainTests.MultiRankCommunicatorTests,BenchmarksTests.AllReduceBenchmarkTests
ROOT_MPI_ENVIRONMENT := $(if $(filter 0,$(shell id -u)),OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1,)
# Ranks share the cores: one OpenBLAS thread each keeps three ranks on two cores from thrashing.
# A rank that fails inside a collective must not leave the others waiting forever.
MPIRUN := $(ROOT_MPI_ENVIRONMENT) OPENBLAS_NUM_THREADS=1 timeout 600 mpirun

.PHONY: all deps build demo test clean

all: build

deps:
	@missing=""; \
	for package in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	  else \
	    echo "missing Debian packages; install them with:" >&2; \
	    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends$$missing" >&2; \
	    exit 1; \
	  fi; \
	fi
	@if ! python3 -c 'import h5py' 2>/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    python3 -m pip install --break-system-packages h5py 2>/dev/null || python3 -m pip install h5py \
	      || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-h5py; \
	  else \
	    python3 -m pip install --user h5py || { \
	      echo "python3 cannot import h5py; install it with:" >&2; \
	      echo "  sudo apt-get install -y --no-install-recommends python3-h5py" >&2; \
	      exit 1; }; \
	  fi; \
	  python3 -c 'import h5py'; \
	fi

build: deps
	$(SWIFT) build -c release --scratch-path $(SCRATCH)

demo: build
	$(SCRATCH)/release/disttrain cluster/fashion-mnist.json

# Tests use `@testable import`, which a release build only allows with -enable-testing.
test: deps
	$(SWIFT) build -c release --scratch-path $(SCRATCH) --build-tests -Xswiftc -enable-testing
	$(XCTEST)
	@for class in $$(echo "$(MULTI_RANK_TESTS)" | tr ',' ' '); do \
	  $(XCTEST) --list-tests | grep -q "^$$class/" || { echo "no test class $$class in $(XCTEST)" >&2; exit 1; }; \
	done
	$(MPIRUN) -n 2 $(XCTEST) $(MULTI_RANK_TESTS)
	$(MPIRUN) -n 3 --oversubscribe $(XCTEST) $(MULTI_RANK_TESTS)

clean:
	rm -rf $(SCRATCH)
