# sweep: every target installs what it needs first (make install), so a fresh clone needs nothing else.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STUDY  ?= studies/default.toml
N_JOBS ?= 0
STAMP  := $(VENV)/.installed

.PHONY: help install test sweep report show validate overhead bench bench-analysis clean

help:  ## list the targets
	@awk -F ':.*## ' '/^[a-z-]+:.*## / {printf "  %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install sweep with its dev extras

test: $(STAMP)  ## run the test suite
	$(PY) -m pytest

sweep: $(STAMP)  ## run (or resume) STUDY (default studies/default.toml) on N_JOBS cores (0 = all), then its report
	$(PY) -m sweep run $(STUDY) --n-jobs $(N_JOBS)
	$(PY) -m sweep report $(STUDY)

report: $(STAMP)  ## analysis, figures and report.html of STUDY's results
	$(PY) -m sweep report $(STUDY)

bench: $(STAMP)  ## engine speed on the studies' workloads vs scikit-learn, numpy, PyTorch and JAX (if installed), the compute floor; QUICK=1 for a short look
	$(PY) -m sweep.bench $(if $(QUICK),--quick)

validate: $(STAMP)  ## coverage study of the variance CIs: grids, seed sources, sampled spaces (about an hour)
	$(PY) tools/validate_variance.py
	$(PY) tools/validate_sampled.py

bench-analysis: $(STAMP)  ## speed of the report (TPE study) and of sweep analyze on 100,000 runs
	$(PY) tools/bench_analysis.py

overhead: $(STAMP)  ## per-trial storage overhead of STUDY: SQLite vs PostgreSQL (needs Debian's postgresql)
	$(PY) tools/storage_overhead.py $(STUDY)

show: $(STAMP)  ## progress and top configurations of STUDY's results
	$(PY) -m sweep show $(STUDY)

clean:  ## remove the virtual environment and caches (results are kept)
	rm -rf $(VENV) .pytest_cache build *.egg-info
