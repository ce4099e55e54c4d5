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

# The shipped IdGlow model (assets/idglow): SFT with both identity gates held constant (the LoRA recipe, 8,000 steps,
# configs/sft-constant-longer.yaml), 4,000 more steps of it from its weights (configs/sft-constant-longest-init.yaml),
# 2,000 steps of the jittered-views identity loss (configs/sft-constant-longest-init-jitter2k.yaml) and DPO on pairs drawn
# from that run, all on the shipped base model; the DPO model scored on 100 records of each held-out benchmark under the
# settings below (the trained sampler; groups: identity guidance 1.25 and 1.5; age: 1.25 to 2 with the paper's window),
# exported with a gallery of held-out people; then its DPO adapter scaled by 1.5 (train export --dpo-scale: exact, no
# training; benchmarks/results/dpo-scale), the scaled model scored under the same settings and exported to assets/idglow
# with the sampler those scores recommend per task (sampler.json: idglow.runs.sampler's rule), then confirmed on the
# other 100 records (benchmarks/sampler_confirm.py). About 12 hours
# on 2 CPU cores (the first stage also on one GPU: scripts/gpu_idglow_model.sh); every step resumes when re-run.
# Needs data/cast (`idglow synth build --out data/cast`).
SFT_RUN := runs/sft-constant-longest-init-jitter2k
DPO_RUN := runs/dpo-constant-longest-init-jitter2k
UNSCALED := runs/idglow-jitter2k
SCALED := runs/idglow-dpo1.5
DPO_SCALE := 1.5
GROUP := --benchmark data/cast/synth-group.jsonl
AGE := --benchmark data/cast/synth-age.jsonl
# The samplers a model is scored under on 100 records of each benchmark (DPO_EVALS names their folders): the trained
# sampler; groups at identity guidance 1.25 and 1.5; age with the paper's window at 1.25 to 2.
define score_samplers
	$(BIN)/idglow train sft-eval --run $(1) --limit 100 --out $(1)/eval
	for g in 1.25 1.5; do \
	  $(BIN)/idglow train sft-eval --run $(1) --limit 100 --id-guidance $$g $(GROUP) --out $(1)/eval-g$$g-group \
	  || exit 1; done
	for g in 1.25 1.5 1.75 2; do \
	  $(BIN)/idglow train sft-eval --run $(1) --limit 100 --id-guidance $$g --schedule age.kind=window $(AGE) \
	    --out $(1)/eval-g$$g-age.kind-window || exit 1; done
endef
idglow-model: $(BIN)/.installed
	$(BIN)/idglow train sft --config configs/sft-constant-longer.yaml
	$(BIN)/idglow train sft --config configs/sft-constant-longest-init.yaml
	$(BIN)/idglow train sft --config configs/sft-constant-longest-init-jitter2k.yaml
	$(BIN)/idglow pairs build --run $(SFT_RUN) --items 200 --candidates 4 --out data/pairs-constant-longest-init-jitter2k
	$(BIN)/idglow train dpo --config configs/dpo-constant-longest-init-jitter2k.yaml
	$(call score_samplers,$(DPO_RUN))
	$(BIN)/idglow train export --run $(DPO_RUN) --out $(UNSCALED) $(foreach f,$(DPO_EVALS),--scores $(DPO_RUN)/$(f)) \
	    --gallery data/cast --train-command-line "make idglow-model: configs/sft-constant-longer.yaml; \
	configs/sft-constant-longest-init.yaml; configs/sft-constant-longest-init-jitter2k.yaml; pairs build --items 200 \
	--candidates 4; configs/dpo-constant-longest-init-jitter2k.yaml"
	$(BIN)/idglow train export --run $(UNSCALED) --dpo-scale $(DPO_SCALE) --out $(SCALED)
	$(call score_samplers,$(SCALED))
	$(BIN)/idglow train export --run $(UNSCALED) --dpo-scale $(DPO_SCALE) --out assets/idglow \
	    $(foreach f,$(DPO_EVALS),--scores $(SCALED)/$(f)) --train-command-line "make idglow-model: \
	configs/sft-constant-longer.yaml; configs/sft-constant-longest-init.yaml; configs/sft-constant-longest-init-jitter2k.yaml; \
	pairs build --items 200 --candidates 4; configs/dpo-constant-longest-init-jitter2k.yaml; train export --dpo-scale $(DPO_SCALE)"
	$(BIN)/python benchmarks/sampler_confirm.py --run assets/idglow --out benchmarks/results/sampler_confirm \
	    --against benchmarks/results/sampler_confirm-jitter2k
DPO_EVALS := eval eval-g1.25-group eval-g1.5-group eval-g1.25-age.kind-window eval-g1.5-age.kind-window \
	eval-g1.75-age.kind-window eval-g2-age.kind-window

clean:
	rm -rf $(VENV) runs .pytest_cache
