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

.PHONY: install fixtures labs test test-slow test-course test-browser lab release bench clean grader-deps

install: $(STAMP)

# torch==2.13.0 is pinned in pyproject.toml: that is the small CPU build here.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

fixtures: $(STAMP)
	$(PY) -m labkit fixtures

labs: fixtures
	$(PY) -m labkit run all --out $(OUT) --grade

test: $(STAMP)
	$(PY) -m pytest

# bubblewrap, the sandbox of `labkit grade` (without it the grader refuses unless given --isolation rlimits):
# installed with apt-get (Debian/Ubuntu) or dnf (Fedora), as root or through sudo, then checked to work here.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
grader-deps: $(STAMP)
	@if ! command -v bwrap >/dev/null 2>&1; then \
	  if [ -n "$(SUDO)" ] && ! sudo -n true 2>/dev/null; then \
	    echo "bubblewrap is not installed and this user cannot install packages: run 'sudo apt-get install bubblewrap' (Debian/Ubuntu) or 'sudo dnf install bubblewrap' (Fedora), or grade with --isolation rlimits and its risks (README: Isolation)" >&2; exit 1; \
	  elif command -v apt-get >/dev/null 2>&1; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    $(SUDO) apt-get install -y -qq bubblewrap >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq bubblewrap; } || exit 1; \
	  elif command -v dnf >/dev/null 2>&1; then \
	    $(SUDO) dnf install -y -q bubblewrap || exit 1; \
	  else \
	    echo "no apt-get or dnf here: install bubblewrap with this system's package manager" >&2; exit 1; \
	  fi; \
	fi
	@$(PY) -c "from labkit.sandbox import bwrap_works; ok, why = bwrap_works(); \
	print('bubblewrap works: labkit grade will sandbox submissions in it' if ok else 'bubblewrap is not usable: ' + why); \
	raise SystemExit(0 if ok else 1)"

test-slow: $(STAMP)
	$(PY) -m pytest -m "slow and not course_shaped"

# The three labs with profile=course at flan-t5-base size on this CPU: the course-shaped stand-in (random weights,
# built once into LABKIT_HOME/course-shaped) as LABKIT_MODELS, the real DialogSum validation split from
# ../shared/data/dialogsum (skipped when absent), sizes turned down. About 10 minutes; lab 2 peaks near 16 GB.
test-course: $(STAMP)
	$(PY) -m pytest -m course_shaped -v --durations=0 tests/test_course_shaped.py

# A real JupyterLab driven by Debian's Chromium (playwright's own browser download cannot work here):
# each lab runs from Run → Run All Cells; screenshots go to $(OUT)/browser.
test-browser: fixtures
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; }
	@$(PY) -c "import playwright" 2>/dev/null || $(PY) -m pip install --quiet -e ".[test,browser]"
	LABKIT_BROWSER_OUT=$(abspath $(OUT))/browser $(PY) -m pytest -m browser tests/browser -v --durations=0

# JupyterLab on labs/ for a learner: the project's kernel registered as "genai-labs" (the default for new
# notebooks; the labs' own "python3" resolves to this venv too), Jupyter news and update checks off.
# Extra server options: make lab LAB_ARGS="--no-browser --port=8899".
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.d/genai-labs.json
lab: fixtures
	$(PY) -m ipykernel install --sys-prefix --name genai-labs \
	  --display-name "genai-labs (Python $$($(PY) -c 'import sys; print(*sys.version_info[:2], sep=".")'))" >/dev/null
	@mkdir -p $(dir $(LAB_OVERRIDES))
	@echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' > $(LAB_OVERRIDES)
	JUPYTER_PREFER_ENV_PATH=1 $(VENV)/bin/jupyter lab --ServerApp.root_dir=labs \
	  --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate \
	  --MappingKernelManager.default_kernel_name=genai-labs $(LAB_ARGS)

release: $(STAMP)
	$(PY) -m labkit release --out $(OUT)/release

bench: $(STAMP)
	$(PY) -m labkit bench

clean:
	rm -rf $(OUT) .pytest_cache
