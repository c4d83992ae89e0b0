# mxgate - the two commands a newcomer needs are `make run` and `make check`.

BUILD      ?= build
CHECKBUILD ?= build-check
FUZZBUILD  ?= build-fuzz
PYTHON     ?= /usr/bin/python3
JOBS       ?= $(shell nproc)
# make install: where (PREFIX), and under which staging root (DESTDIR, for packagers)
PREFIX     ?= /usr/local
DESTDIR    ?=
DEBBUILD   ?= build-deb
VERSION    := $(shell sed -n '/^project.mxgate VERSION/s/.*VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)

# libFuzzer: seconds per harness for `make fuzz`, and within `make check`.
FUZZ_TIME       ?= 60
FUZZ_CHECK_TIME ?= 20
FUZZERS         ?= fuzz_parse fuzz_address fuzz_dsn fuzz_session fuzz_spool fuzz_spf fuzz_dkim \
                   fuzz_authres fuzz_proxyproto fuzz_policysrv

.PHONY: all deps run check layers sizes unit integration format clean fuzz fuzz-build install deb

all:
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target mxgated mxgatectl

# Everything (build, run, package, test); `make run` installs only what building and
# running need.
deps:
	@scripts/deps.sh all

run:
	@scripts/deps.sh build run
	$(MAKE) --no-print-directory all
	scripts/run.sh

# The daemon in PREFIX/sbin, mxgatectl in PREFIX/bin, the manual pages, the example
# configuration in PREFIX/share/doc/mxgate/examples and, unless one is there already,
# as SYSCONFDIR/mxgate/mxgate.conf (/etc for PREFIX=/usr, else PREFIX/etc).
install:
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target mxgated mxgatectl
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)

# The Debian package $(DEBBUILD)/mxgate_$(VERSION)_amd64.deb, built by dpkg-buildpackage
# from debian/ in a copy of the working tree (tracked and new files, not build
# directories): dpkg-buildpackage writes beside the source directory. The copy
# is kept, so a second `make deb` rebuilds only what changed.
deb:
	@scripts/deps.sh build package
	@test "$$(dpkg-parsechangelog -S Version)" = "$(VERSION)" || \
	    { echo "deb: debian/changelog says $$(dpkg-parsechangelog -S Version), CMakeLists.txt $(VERSION)"; exit 1; }
	@mkdir -p $(DEBBUILD)/src
	@rm -f $(DEBBUILD)/*.deb $(DEBBUILD)/*.buildinfo $(DEBBUILD)/*.changes
	@git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -C $(DEBBUILD)/src -xf -
	cd $(DEBBUILD)/src && dpkg-buildpackage -b -nc -us -uc -j$(JOBS) >../build.log 2>&1 || \
	    { tail -n 40 ../build.log; exit 1; }
	@ls $(DEBBUILD)/mxgate_$(VERSION)_amd64.deb

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
	cmake -S . -B $(CHECKBUILD) -DCMAKE_BUILD_TYPE=Debug -DMXGATE_SANITIZE=ON -DMXGATE_WERROR=ON >/dev/null
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
	    -DCMAKE_BUILD_TYPE=Debug -DMXGATE_FUZZ=ON -DMXGATE_WERROR=ON >/dev/null
	cmake --build $(FUZZBUILD) -j $(JOBS) --target fuzzers

# Each harness runs FUZZ_TIME seconds from the seeds in tests/fuzz/corpus/NAME
# and what earlier runs found ($(FUZZBUILD)/corpus/NAME). A crash, a leak or a
# violated property fails the target; the input is kept in $(FUZZBUILD)/crashes/
# (add it to tests/fuzz/corpus/NAME once fixed). Reproduce: $(FUZZBUILD)/fuzz/NAME FILE
fuzz: fuzz-build
	@mkdir -p $(FUZZBUILD)/crashes
	@for f in $(FUZZERS); do \
	    case $$f in fuzz_parse|fuzz_session) opt=-dict=tests/fuzz/session.dict;; *) opt=;; esac; \
	    case $$f in fuzz_session|fuzz_dsn|fuzz_spool|fuzz_dkim) opt="$$opt -max_len=8192";; esac; \
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
	rm -rf $(BUILD) $(CHECKBUILD) $(FUZZBUILD) $(DEBBUILD)
