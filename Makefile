# netbabel: `make demo` sets everything up and runs the reference check; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
JOBS ?= 2

.PHONY: demo test bench schema nest-mpi clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,dev,mpi]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/netbabel check reference_models/brunel2000/brunel2000.json \
		--backends nest,pynn-nest,netpyne --mode frozen --duration 500 \
		--workdir demo_out --report demo_out/report.html

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) --timeout 900 -q

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

schema: $(STAMP)
	$(VENV)/bin/netbabel schema --write

clean:
	rm -rf $(VENV) build *.egg-info demo_out
