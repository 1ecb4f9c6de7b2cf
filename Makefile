# The README's two commands: `make demo` runs the main job, `make test` passes the tests.
# Each creates or reuses .venv, installs what is missing, then runs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install system-deps bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: system-deps $(STAMP)

system-deps:
	@bash .ci/system-deps

demo: install
	$(BIN)/paylimit demo

test: install
	$(BIN)/python -m pytest -q --durations=20

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .paylimit
