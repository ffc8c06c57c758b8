# The single entry point. On a fresh machine:  make lab   (open the series)
#                                              make test  (run the tests)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: lab test install figures bench lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-install only when the package metadata changes.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (nst-notebooks)" >/dev/null
	touch $(STAMP)

install: $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

figures: $(STAMP)
	$(PY) -m nst_helpers figures --out figures/

bench: $(STAMP)
	$(PY) benchmarks/bench.py

lint: $(STAMP)
	$(VENV)/bin/ruff check nst_helpers tests benchmarks scripts

clean:
	rm -rf $(VENV) .pytest_cache figures
