# The two set-up commands of the README. Each creates (or refreshes, when pyproject.toml changed)
# the virtual environment, then runs. Everything runs offline: no code path downloads weights.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= runs/demo

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: demo test bench reproduce idglow-model clean

$(BIN)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/idglow demo --out $(OUT)

# One pytest worker per core; a test file stays on one worker, so its module fixtures are built once. Files go out
# in collection order (tests/conftest.py puts the longest, the demo's, first), not re-sorted by test count.
test: $(BIN)/.installed
	$(BIN)/python -m pytest -n auto --dist loadfile --no-loadscope-reorder --durations=15

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/identity_overhead.py

# Everything from noise, the base model included: hours on 2 CPU cores. Regenerates the README's tables
# (each command writes the results file its table is read from). It overwrites assets/ and data/cast.
reproduce: $(BIN)/.installed
	$(BIN)/idglow synth build --out data/cast
	$(BIN)/idglow synth train-judges --out assets/judges
	$(BIN)/idglow synth mu-real --data data/cast
	$(BIN)/python benchmarks/cast_resolution.py
	$(BIN)/idglow train vae --config configs/synth-vae.yaml
	$(BIN)/idglow train base --config configs/synth-base.yaml
	$(BIN)/idglow train base --config configs/synth-base.yaml
	$(BIN)/idglow train export --run runs/synth-base --out assets/base
	$(BIN)/idglow train base-eval --run runs/synth-base
	$(BIN)/python benchmarks/base_sweep.py
	$(BIN)/python benchmarks/sft_ablations.py --limit 100
	$(BIN)/idglow prompts refine --run runs/synth-sft --limit 100 --out runs/refine
	$(BIN)/idglow pairs build --run runs/sft-lora --items 400 --candidates 4 --out data/pairs
	$(BIN)/python benchmarks/dpo_variants.py
	$(BIN)/python benchmarks/dpo_memory.py
	$(BIN)/python benchmarks/sampling_speed.py
	$(BIN)/python benchmarks/identity_overhead.py
	$(MAKE) idglow-model
	$(BIN)/idglow demo --out runs/demo --force

# The shipped IdGlow model (assets/idglow): SFT (the LoRA recipe, 8,000 steps) and DPO on the shipped base model, both
# scored on 100 records of each held-out benchmark (DPO also with identity guidance 1.25 and 1.5, group photos with
# the group gate kept at 0.3, and children with the age window open down to sigma 0), exported with a gallery of
# held-out people and the sampler those scores recommend per task (sampler.json). About 6 hours on 2 CPU cores; every step resumes when re-run. Needs data/cast
# (`idglow synth build --out data/cast`).
idglow-model: $(BIN)/.installed
	$(BIN)/idglow train sft --config configs/sft-longer.yaml
	$(BIN)/idglow train sft-eval --run runs/sft-longer --limit 100 --out runs/sft-longer/eval
	$(BIN)/idglow pairs build --run runs/sft-longer --items 200 --candidates 4 --out data/pairs-longer
	$(BIN)/idglow train dpo --config configs/dpo-longer.yaml
	$(BIN)/idglow train sft-eval --run runs/dpo-longer --limit 100 --out runs/dpo-longer/eval
	$(BIN)/idglow train sft-eval --run runs/dpo-longer --limit 100 --id-guidance 1.25 --out runs/dpo-longer/eval-g1.25
	$(BIN)/idglow train sft-eval --run runs/dpo-longer --limit 100 --id-guidance 1.5 --out runs/dpo-longer/eval-g1.5
	$(BIN)/idglow train sft-eval --run runs/dpo-longer --limit 100 --id-guidance 1.5 --schedule group.lambda_min=0.3 \
	    --benchmark data/cast/synth-group.jsonl --out runs/dpo-longer/eval-g1.5-group.lambda_min-0.3
	$(BIN)/idglow train sft-eval --run runs/dpo-longer --limit 100 --schedule age.sigma_lo=0.0 \
	    --benchmark data/cast/synth-age.jsonl --out runs/dpo-longer/eval-age.sigma_lo-0.0
	$(BIN)/idglow train export --run runs/dpo-longer --out assets/idglow --scores runs/dpo-longer/eval \
	    --scores runs/dpo-longer/eval-g1.25 --scores runs/dpo-longer/eval-g1.5 \
	    --scores runs/dpo-longer/eval-g1.5-group.lambda_min-0.3 --scores runs/dpo-longer/eval-age.sigma_lo-0.0 \
	    --gallery data/cast \
	    --train-command-line "make idglow-model: configs/sft-longer.yaml; pairs build --items 200 --candidates 4; configs/dpo-longer.yaml"

clean:
	rm -rf $(VENV) runs .pytest_cache
