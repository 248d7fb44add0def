# Builds the pinned venv, then runs the offline demo, the tests or the benchmark.
PYTHON ?= python3.11
VENV := .venv
INSTALLED := $(VENV)/.installed
CORES ?= all

.PHONY: venv demo data-order lab lab-gpu test bench lint

$(INSTALLED): requirements.txt requirements.lock requirements-hashed.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: bpy 5.0.1 needs Python 3.11 (set PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt -c requirements.lock
	$(VENV)/bin/pip install --quiet --no-deps --require-hashes -r requirements-hashed.txt
	touch $(INSTALLED)

venv: $(INSTALLED)

demo: venv
	$(VENV)/bin/snakemake --profile profiles/local --cores $(CORES) --configfile configs/demo.yaml

# Paper B's data-order experiment and the training progression (about an hour on 2 cores), in its own working
# directory so that its paper_b tables do not replace the demo's.
data-order: venv
	$(VENV)/bin/snakemake --profile profiles/local --cores $(CORES) --configfile configs/data_order.yaml \
		--directory results/data-order

# The lab (README, "The lab"; about an hour and a half on 2 cores today): CLIPs trained here, the one paper A is
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
