# Builds the pinned venv, then runs the offline demo, the tests or the benchmark.
PYTHON ?= python3.11
VENV := .venv
INSTALLED := $(VENV)/.installed
CORES ?= all

.PHONY: venv demo data-order lab lab-gpu test bench lint lock

# Every package at the version and with the hashes requirements.lock pins, pip refusing any file whose sha256
# differs; requirements.txt lists the packages the workflow imports, requirements.lock everything they need.
$(INSTALLED): requirements.txt requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: bpy 5.0.1 needs Python 3.11 (set PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	touch $(INSTALLED)

# After changing requirements.txt and installing it into the venv (and testing it): freeze the venv into
# requirements.lock with every file's hash from PyPI.
lock: venv
	$(VENV)/bin/pip install --quiet -r requirements.txt
	( head -2 requirements.lock; $(VENV)/bin/pip freeze --all ) > requirements.lock.new
	$(VENV)/bin/python .ci/lock_hashes.py requirements.lock.new
	mv requirements.lock.new requirements.lock

venv: $(INSTALLED)

demo: venv
	$(VENV)/bin/snakemake --profile profiles/local --cores $(CORES) --configfile configs/demo.yaml

# Paper B's data-order experiment and the training progression (about an hour on 2 cores), in its own working
# directory so that its paper_b tables do not replace the demo's.
data-order: venv
	$(VENV)/bin/snakemake --profile profiles/local --cores $(CORES) --configfile configs/data_order.yaml \
		--directory results/data-order

# The lab (README, "The lab"; 86 minutes on 2 cores on 2026-12-08): CLIPs trained here, the one paper A is
# tested on chosen by held-out loss, and paper B's data-order experiment in three arms of five seeds; ends by
# printing results/summary.txt.
lab: venv
	$(VENV)/bin/snakemake --profile profiles/local --cores $(CORES) --configfile configs/lab.yaml \
		--directory results/lab
	@cat results/lab/results/summary.txt

lab-gpu: venv
	$(VENV)/bin/snakemake --profile profiles/local --cores $(CORES) --configfile configs/lab.yaml configs/lab-gpu.yaml \
		--directory results/lab-gpu
	@cat results/lab-gpu/results/summary.txt

test: venv
	$(VENV)/bin/python -m pytest tests

bench: venv
	$(VENV)/bin/python benchmarks/bench.py

lint: venv
	$(VENV)/bin/snakemake --lint
