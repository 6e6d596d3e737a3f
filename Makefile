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

# NEST with MPI (the PyPI wheel has none), built from the PyPI sdist into a cache outside the
# checkout, keyed by version; the nest backend finds it there for `--processes N`.
NEST_VERSION := 3.10.0
NEST_MPI_PREFIX ?= $(HOME)/.cache/netbabel/nest-3.10-mpi
NEST_SDIST_URL := https://files.pythonhosted.org/packages/0c/f0/32302457ea87020dd295cbf8049f41ec21ba4ffafbe354d6683974434049/nest_simulator-$(NEST_VERSION).tar.gz
NEST_SDIST_SHA256 := 8fbd7df4a3e941784d4b1d5825ded234bdc915238faac0982c62e4cb80134d52
# the models netbabel's NEST and PyNN exports use (a fraction of NEST's 136: a much shorter build);
# `make nest-mpi NEST_MODELS=` builds NEST's full model set
NEST_MODELS ?= iaf_psc_exp;iaf_psc_alpha;iaf_psc_delta;iaf_cond_exp;iaf_cond_alpha;aeif_cond_exp;izhikevich;hh_cond_exp_traub;poisson_generator;spike_generator;dc_generator;step_current_generator;parrot_neuron;spike_recorder;multimeter;weight_recorder;static_synapse;static_synapse_hom_w;tsodyks_synapse;stdp_synapse

nest-mpi: $(NEST_MPI_PREFIX)/.built

$(NEST_MPI_PREFIX)/.built:
	@command -v mpicxx >/dev/null || { echo "nest-mpi needs Open MPI: apt-get install openmpi-bin libopenmpi-dev cmake g++ libgsl-dev libltdl-dev"; exit 1; }
	test -x $(PY) || $(MAKE) $(STAMP)
	set -e; work=$$(mktemp -d); trap 'rm -rf "$$work"' EXIT; \
	curl -fsSL --retry 3 -o "$$work/nest.tar.gz" '$(NEST_SDIST_URL)'; \
	echo "$(NEST_SDIST_SHA256)  $$work/nest.tar.gz" | sha256sum -c -; \
	tar xzf "$$work/nest.tar.gz" -C "$$work"; \
	cmake -S "$$work/nest_simulator-$(NEST_VERSION)" -B "$$work/build" -DCMAKE_INSTALL_PREFIX="$(NEST_MPI_PREFIX)" \
	  -Dwith-mpi=ON -Dwith-openmp=ON -Dwith-python=ON -Dwith-gsl=ON -Dwith-boost=OFF -Dwith-optimize=-O2 \
	  $(if $(NEST_MODELS),-Dwith-models='$(NEST_MODELS)') \
	  -DPython_EXECUTABLE="$(abspath $(PY))" >"$$work/cmake.log" || { tail -40 "$$work/cmake.log"; exit 1; }; \
	$(MAKE) -C "$$work/build" -j$(JOBS) install >"$$work/build.log" 2>&1 || { tail -40 "$$work/build.log"; exit 1; }
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info demo_out
