# The course's commands. `make demo` and `make test` are all a newcomer needs (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup system-deps demo test test-lib test-notebooks lint lab lab-instructor site site-deps release grade bench bench-grader checkpoints clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

# The venv is (re)built when missing or when the pins or the package metadata changed.
$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)  ## create or update .venv with the pinned dependencies

system-deps:  ## Debian packages the grader needs (bubblewrap; PostgreSQL for its tests), installed as root when missing
	@bash scripts/install_system_packages.sh

demo: $(STAMP) system-deps  ## instructor's end-to-end job: release, grade the sample submissions, show the grades
	$(PY) -m autograder demo

# Two workers (the machine has 2 cores), one torch thread each; a test file or a notebook stays on one worker.
PYTEST := ARFLOW_FAST=1 OMP_NUM_THREADS=1 $(PY) -m pytest -q -ra -n 2 --dist loadfile
# The lectures run with their write-and-check exercises filled in from exercises/solutions/ (copies in
# build/lectures/), each check required to pass (ARFLOW_EXERCISES_STRICT=1); tests/test_exercises.py runs
# the shipped stubs, which differ only in those cells.
NOTEBOOKS := build/lectures solutions/10_ar/pixelcnn.ipynb solutions/11_maf/maf.ipynb
FILL_LECTURES = rm -rf build/lectures && $(PY) -m arflow.exercises.fill --all lectures exercises/solutions build/lectures
NBVAL := ARFLOW_EXERCISES_STRICT=1 $(PYTEST) --nbval-lax --nbval-cell-timeout=600 $(NOTEBOOKS)

test: $(STAMP) system-deps site-deps  ## every test: ruff, library, checkpoints, grader, release, then every notebook (ARFLOW_FAST=1)
	$(PY) -m ruff check .
	$(PYTEST) tests
	$(FILL_LECTURES)
	$(NBVAL)

test-lib: $(STAMP) system-deps site-deps  ## the pytest suite without the notebooks
	$(PYTEST) tests

test-notebooks: $(STAMP)  ## execute every notebook in CI mode (lectures with the exercises' solutions filled in)
	$(FILL_LECTURES)
	$(NBVAL)

lint: $(STAMP)  ## ruff
	$(PY) -m ruff check .

# JupyterLab at the course root with the project's own config folder on JUPYTER_CONFIG_PATH
# (jupyter/student or jupyter/instructor; both save widget state with the notebook). As root (a
# container) it adds --allow-root and nothing else.
LAB = JUPYTER_CONFIG_PATH=$(CURDIR)/jupyter/$(1)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH} \
	$(VENV)/bin/jupyter lab --notebook-dir=. $(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(STAMP)  ## JupyterLab for students: the lectures and explorers, no nbgrader instructor tools
	$(call LAB,student)

lab-instructor: $(STAMP)  ## JupyterLab with nbgrader's Formgrader, Create Assignment and Validate
	$(call LAB,instructor)

# The site's scripts (widget manager, require.js, MathJax) come from npm at pinned versions with checksums,
# once, into build/site-js: building and testing the site needs no network after that.
SITE_JS := build/site-js/.stamp
$(SITE_JS): requirements/site-js.txt | $(STAMP)
	@$(PY) scripts/build_site.py vendor || echo "note: the site's scripts are missing (tests/test_site.py will skip)"

site-deps: $(SITE_JS)  ## the scripts the static site serves itself (pinned npm packages, checked)

site: $(STAMP) $(SITE_JS)  ## every lecture run and rendered with its outputs and explorers into site/ (static HTML)
	$(PY) scripts/build_site.py build --out site

release: $(STAMP)  ## regenerate every assignments/<name> from solutions/<name> with nbgrader (10_ar, 11_maf)
	$(PY) -m autograder release

grade: $(STAMP) system-deps  ## grade every submission of ASSIGNMENT (default 10_ar) under submitted/ into graded/ (JOBS=2 workers by default)
	$(PY) -m autograder grade --assignment $(or $(ASSIGNMENT),10_ar) --submitted submitted --out graded --jobs $(or $(JOBS),2)

bench: $(STAMP)  ## speed and memory measurements (ratios in one run), then grading throughput
	$(PY) -m arflow.bench
	$(PY) -m autograder.bench

bench-grader: $(STAMP)  ## grading throughput and CPU per submission: plain nbgrader, the grader with 1 and 2 jobs, on 2 Celery workers; a 5,000-submission projection (about 15 min)
	$(PY) -m autograder.bench

checkpoints: $(STAMP)  ## retrain every shipped checkpoint (slow: minutes per model)
	$(PY) -m arflow.train.checkpoints train

clean:  ## remove the venv and generated files
	rm -rf $(VENV) graded .pytest_cache build/site-js site
