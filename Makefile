# genai-labs: two commands set everything up on a fresh machine with Python 3.11:
#   make labs   install, build the offline fixtures, run all three labs headlessly, grade them
#   make test   install, run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= outputs
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export PIP_DISABLE_PIP_VERSION_CHECK = 1

.PHONY: install fixtures labs test test-slow test-browser lab release bench clean

install: $(STAMP)

# torch==2.13.0 is pinned in pyproject.toml: that is the small CPU build here.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

fixtures: $(STAMP)
	$(PY) -m labkit fixtures

labs: fixtures
	$(PY) -m labkit run all --out $(OUT)
	$(PY) -m labkit grade-labs --out $(OUT)

test: $(STAMP)
	$(PY) -m pytest

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

# A real JupyterLab driven by Debian's Chromium (playwright's own browser download cannot work here).
test-browser: $(STAMP)
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }
	$(PY) -m pip install --quiet -e ".[test,browser]"
	$(PY) -m pytest -m browser tests/browser -v

lab: $(STAMP)
	$(PY) -m ipykernel install --sys-prefix --name genai-labs --display-name "genai-labs (Python 3.11)" >/dev/null
	$(VENV)/bin/jupyter lab labs/ --LabApp.news_url=None --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate

release: $(STAMP)
	$(PY) -m labkit release --out $(OUT)/release

bench: $(STAMP)
	$(PY) -m labkit bench

clean:
	rm -rf $(OUT) .pytest_cache
