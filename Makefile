# mxgate - the two commands a newcomer needs are `make run` and `make check`.

BUILD      ?= build
CHECKBUILD ?= build-check
FUZZBUILD  ?= build-fuzz
PYTHON     ?= /usr/bin/python3
JOBS       ?= $(shell nproc)

# libFuzzer: seconds per harness for `make fuzz`, and within `make check`.
FUZZ_TIME       ?= 60
FUZZ_CHECK_TIME ?= 20
FUZZERS         ?= fuzz_parse fuzz_address fuzz_dsn fuzz_session fuzz_spool fuzz_spf fuzz_authres

.PHONY: all deps run check layers sizes unit integration format clean fuzz fuzz-build

all:
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target mxgated mxgatectl

deps:
	@scripts/deps.sh

run: deps all
	scripts/run.sh

# Each #include goes down the layers (or stays in its module), no include cycle:
# scripts/layers.py lists the layers and the allowed edges.
layers:
	$(PYTHON) scripts/layers.py

# Small rooms: no file in src/ or tools/ over 800 lines, no function over 80.
sizes:
	$(PYTHON) scripts/sizes.py

# The layers and sizes first, then the sanitized build: every unit test through CTest, then
# the integration suite against the sanitized daemon.
check: deps layers sizes
	@test -f $(CHECKBUILD)/CMakeCache.txt || cmake -S . -B $(CHECKBUILD) -DCMAKE_BUILD_TYPE=Debug -DMXGATE_SANITIZE=ON >/dev/null
	cmake --build $(CHECKBUILD) -j $(JOBS)
	cd $(CHECKBUILD) && ctest --output-on-failure
	@grep -h '^RFC 7208 test suite:' $(CHECKBUILD)/Testing/Temporary/LastTest.log
	MXGATED=$(CURDIR)/$(CHECKBUILD)/mxgated MXGATECTL=$(CURDIR)/$(CHECKBUILD)/mxgatectl \
	    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	    $(PYTHON) -m pytest -q tests/integration
	$(MAKE) --no-print-directory fuzz FUZZ_TIME=$(FUZZ_CHECK_TIME)

# The harnesses need clang (libFuzzer): their own build directory, configured
# once with CC=clang -DMXGATE_FUZZ=ON (the whole library is built there with
# -fsanitize=fuzzer-no-link,address,undefined).
fuzz-build:
	@test -f $(FUZZBUILD)/CMakeCache.txt || CC=clang cmake -S . -B $(FUZZBUILD) \
	    -DCMAKE_BUILD_TYPE=Debug -DMXGATE_FUZZ=ON >/dev/null
	cmake --build $(FUZZBUILD) -j $(JOBS) --target fuzzers

# Each harness runs FUZZ_TIME seconds from the seeds in tests/fuzz/corpus/NAME
# and what earlier runs found ($(FUZZBUILD)/corpus/NAME). A crash, a leak or a
# violated property fails the target; the input is kept in $(FUZZBUILD)/crashes/
# (add it to tests/fuzz/corpus/NAME once fixed). Reproduce: $(FUZZBUILD)/fuzz/NAME FILE
fuzz: fuzz-build
	@mkdir -p $(FUZZBUILD)/crashes
	@for f in $(FUZZERS); do \
	    case $$f in fuzz_parse|fuzz_session) opt=-dict=tests/fuzz/session.dict;; *) opt=;; esac; \
	    case $$f in fuzz_session|fuzz_dsn|fuzz_spool) opt="$$opt -max_len=8192";; esac; \
	    mkdir -p $(FUZZBUILD)/corpus/$$f; \
	    echo "fuzz: $$f for $(FUZZ_TIME) s"; \
	    $(FUZZBUILD)/fuzz/$$f -max_total_time=$(FUZZ_TIME) -timeout=30 -rss_limit_mb=2048 \
	        -print_final_stats=1 -artifact_prefix=$(FUZZBUILD)/crashes/$$f- $$opt \
	        $(FUZZBUILD)/corpus/$$f tests/fuzz/corpus/$$f >$(FUZZBUILD)/$$f.log 2>&1 \
	        || { tail -n 60 $(FUZZBUILD)/$$f.log; echo "fuzz: $$f FAILED (log: $(FUZZBUILD)/$$f.log)"; exit 1; }; \
	    grep -E '^stat::(number_of_executed_units|new_units_added)' $(FUZZBUILD)/$$f.log | tr '\n' ' '; echo; \
	done

format:
	clang-format -i src/*.c src/*/*.c src/*/*.h tools/*.c tests/unit/*/*.c tests/unit/support/*.[ch] tests/fuzz/*.c tests/fuzz/*.h

clean:
	rm -rf $(BUILD) $(CHECKBUILD) $(FUZZBUILD)
