# The single entry point. On a fresh machine:  make lab   (open the series)
#                                              make test  (run the tests)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: lab test install figures bench book lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-install only when the package metadata changes.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[lab,dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (nst-notebooks)" >/dev/null
	touch $(STAMP)

install: $(STAMP)

# Jupyter refuses to start as root unless told; root is the usual user in Docker images and cloud
# notebooks, so the flag is added there (and only there). LAB_ARGS passes more options, e.g.
# make lab LAB_ARGS="--no-browser --ip=0.0.0.0" inside a container.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
LAB_ARGS ?=

lab: $(STAMP)
	$(VENV)/bin/jupyter lab $(ALLOW_ROOT) $(LAB_ARGS) notebooks/

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

figures: $(STAMP)
	$(PY) -m nst_helpers figures --out figures/

# The series as a static website with every output (Jupyter Book): book/_build/html/index.html.
# Executes each notebook at its CPU preset, cached: a second build re-runs only changed notebooks.
# MPLBACKEND is unset there so that figures show inline (Agg would drop them); NST_PROGRESS=0 leaves out
# progress bars, which a page read later does not need. BOOK_ARGS passes more options, e.g. BOOK_ARGS=--all to rebuild every page.
BOOK_STAMP := $(VENV)/.book
BOOK_ARGS ?=
$(BOOK_STAMP): pyproject.toml | $(STAMP)
	$(PY) -m pip install -q -e ".[lab,dev,book]"
	touch $(BOOK_STAMP)

book: $(BOOK_STAMP)
	env -u MPLBACKEND NST_PROGRESS=0 $(VENV)/bin/jupyter-book build . --config book/_config.yml --toc book/_toc.yml --path-output book $(BOOK_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/bench.py

lint: $(STAMP)
	$(VENV)/bin/ruff check nst_helpers tests benchmarks scripts

clean:
	rm -rf $(VENV) .pytest_cache figures book/_build
