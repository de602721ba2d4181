# sage-obs template: the two commands of README.md, and a few more.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
OUT ?= out
ARGS ?=

.PHONY: setup render stack-bin test lint bench clean

$(VENV)/.ready: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

setup: $(VENV)/.ready  ## Create .venv with the template's pinned dev tools

render: $(VENV)/.ready  ## Render a scaffold into $(OUT)/ with the defaults; ARGS="project_name='My App'" to answer
	@$(PY) tools/render.py $(OUT) $(ARGS)

stack-bin: $(VENV)/.ready  ## Build otelcol, prometheus and promtool from source into .cache/bin (Go 1.26+; minutes the first time)
	$(PY) -m stack.build

# The venv's bin first: kubectl comes from requirements.txt, whatever the system has; .cache/bin
# next: the collector, Prometheus and promtool built by stack-bin.
test: $(VENV)/.ready  ## The whole suite: installs missing system tools (apt), builds the stack, then renders, boots, tests
	$(PY) -m tests.support.provision
	$(PY) -m stack.build
	PATH="$(abspath $(VENV))/bin:$(abspath .cache/bin):$$PATH" $(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.ready  ## All benchmarks (bench/, ~65 minutes on 2 quiet cores): prints a table, writes docs/PERFORMANCE.md and .json
	$(PY) -m bench.run

lint: $(VENV)/.ready
	$(PY) -m ruff check --no-cache hooks tests bench tools stack && $(PY) -m ruff format --no-cache --check hooks tests bench tools stack

clean:
	rm -rf $(OUT) .cache .pytest_cache
