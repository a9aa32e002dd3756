# geodesk — set-up and everyday commands. `make run` and `make test` install what they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Qt runs without a display in tests and CI; WebEngine needs its sandbox and GPU off there.
TEST_ENV := QT_QPA_PLATFORM=offscreen QTWEBENGINE_CHROMIUM_FLAGS="--no-sandbox --disable-gpu" \
            HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

.PHONY: install system-packages run shell doctor test test-fast lint typecheck contracts pytest egress bench screenshots basemap clean

install: $(STAMP)

# The Debian/Ubuntu libraries Qt and WebEngine need, and the fonts (installers/debian/packages.txt).
# As root (or with password-less sudo) they are installed; otherwise this stops with the command to run.
system-packages:
	@bash installers/debian/ensure-packages.sh

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip wheel setuptools
	$(BIN)/python -m pip install -e ".[dev,training]"
	$(BIN)/python -m geodesk geo prepare  # the geography cache (ADR 0046, 0049): quick first geo answers
	touch $(STAMP)

# The default offline basemap (ADR 0034): Natural Earth 1:10m vector tiles, built from two Debian
# packages fetched with apt-get download (install time only), ~18 MB, not committed.
BASEMAP := resources/basemap/naturalearth-10m.pmtiles

basemap: $(BASEMAP)

$(BASEMAP): tools/build_basemap.py | $(STAMP)
	$(BIN)/python tools/build_basemap.py --out $(BASEMAP)

# geodesk itself turns Qt WebEngine's sandbox off when it runs as root, and says so.
run: system-packages install $(BASEMAP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/geodesk

# A shell with .venv first on PATH, so `geodesk` and `geodesk-train` are the checkout's commands.
shell: install
	@echo "geodesk: .venv is active in this shell (exit to leave)"
	@VIRTUAL_ENV="$(CURDIR)/$(VENV)" PATH="$(CURDIR)/$(BIN):$$PATH" $${SHELL:-/bin/bash} -i

doctor: install
	$(BIN)/geodesk doctor

lint: install
	$(BIN)/ruff check geodesk training tests bench

typecheck: install
	$(BIN)/mypy

contracts: install
	$(BIN)/lint-imports

pytest: install $(BASEMAP)
	$(TEST_ENV) $(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests selected"; exit 0; fi; exit $$rc

test: system-packages lint typecheck contracts pytest

# The end-to-end tests (CLI, app, GUI, services, reports, reliability) with no network at all: inside
# `unshare -n` with only loopback, counting every attempt to leave the machine (ADR 0054). Result:
# bench/results/egress_netns.json. Needs root or unprivileged user namespaces.
egress: install $(BASEMAP)
	$(TEST_ENV) $(BIN)/python tools/egress_netns.py $(EGRESS_ARGS)

# The edit loop: the same checks and every test but the slow ones (CI runs those too).
test-fast: system-packages lint typecheck contracts
	$(MAKE) pytest PYTEST_ARGS='-m "not slow"'

bench: install
	$(TEST_ENV) $(BIN)/python -m bench.run_all

# Screenshots of the main window (offscreen Qt) and the map page (headless Chromium, when installed).
screenshots: install
	$(TEST_ENV) $(BIN)/python tools/screenshots.py --out docs/screenshots

clean:
	rm -rf $(VENV) build *.egg-info
