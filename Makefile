# netpilot: `make demo` runs it, `make test` proves it. Both create .venv when it is missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SHARED ?= ../shared/data
EXTRAS ?= dev

.PHONY: install demo test bench lint sample-network cell-profile schema clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/netpilot demo

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) bench/run_all.py

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

# Regenerates the bundled sample network from the staged GÉANT 2012 backbone (deterministic).
sample-network: install
	$(VENV)/bin/netpilot topo sample \
	  --backbone-graph $(SHARED)/te/repetita/2016TopologyZooUCL_inverseCapacity/Geant2012.graph \
	  --backbone-demands $(SHARED)/te/repetita/2016TopologyZooUCL_inverseCapacity/Geant2012.0000.demands \
	  -o src/netpilot/data/sample_network.yaml
	$(PY) bench/bundled_metrics.py --write

# Regenerates the weekly cell-traffic profile the simulator ships with, from the staged LTE Barcelona cells.
cell-profile: install
	$(PY) -c "from pathlib import Path; from netpilot.telemetry.sim.profile import write_profile; \
	d = Path('$(SHARED)/telemetry/lte_barcelona'); \
	write_profile([d / 'ElBorn.csv', d / 'LesCorts.csv', d / 'PobleSec.csv'], Path('src/netpilot/data/cell_profile.json'))"

schema: install
	$(VENV)/bin/netpilot topo schema -o src/netpilot/data/network.schema.json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build src/*.egg-info
