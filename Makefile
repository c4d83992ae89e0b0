# mxgate - the two commands a newcomer needs are `make run` and `make check`.

BUILD      ?= build
CHECKBUILD ?= build-check
PYTHON     ?= /usr/bin/python3
JOBS       ?= $(shell nproc)

.PHONY: all deps run check unit integration format clean

all:
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target mxgated mxgatectl

deps:
	@scripts/deps.sh

run: deps all
	scripts/run.sh

# Sanitized build: every unit test through CTest, then the integration suite
# against the sanitized daemon.
check: deps
	@test -f $(CHECKBUILD)/CMakeCache.txt || cmake -S . -B $(CHECKBUILD) -DCMAKE_BUILD_TYPE=Debug -DMXGATE_SANITIZE=ON >/dev/null
	cmake --build $(CHECKBUILD) -j $(JOBS)
	cd $(CHECKBUILD) && ctest --output-on-failure
	MXGATED=$(CURDIR)/$(CHECKBUILD)/mxgated MXGATECTL=$(CURDIR)/$(CHECKBUILD)/mxgatectl \
	    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	    $(PYTHON) -m pytest -q tests/integration

format:
	clang-format -i src/*.c src/*/*.c src/*/*.h tools/*.c tests/unit/*.c

clean:
	rm -rf $(BUILD) $(CHECKBUILD)
