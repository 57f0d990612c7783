# Gantry: `make demo` runs everything on this machine; `make test` runs the test suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint install system browser bench clean

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) tools/timed.py "Creating the virtualenv $(VENV)" -- $(PYTHON) -m venv $(VENV)
	@$(PYTHON) tools/timed.py "Installing $$(grep -c '==' requirements.lock) pinned packages (about a minute the first time)" -- \
	  $(PY) -m pip install --disable-pip-version-check --progress-bar off -r requirements.lock
	@touch $(STAMP)

install: $(STAMP)

# Debian packages the tests drive for real: chromium for the browser journeys (never
# `playwright install`), prometheus for verification rules, the PostgreSQL client tools.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v prometheus >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v pg_dump >/dev/null 2>&1 || missing="$$missing postgresql-client"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

browser: system

demo: $(STAMP)
	DEBUG=1 $(PY) manage.py demo

# ruff (pyflakes, bugbear, pyupgrade, simplify, Django, complexity <= 15), djlint on the
# templates, the import contracts (the layering in docs/architecture.md), all in pyproject.toml; and
# bandit on the product code: nothing of medium severity or above (a `# nosec` needs its reason).
lint: | $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/djlint --lint templates
	$(VENV)/bin/lint-imports
	$(VENV)/bin/bandit -q -ll -r portal deployments environments

test: lint system
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf .demo gantry.sqlite3 gantry.sqlite3-* staticfiles
