# Sourced by chain.sh and confirm.sh: SRC, the model they scale, the 2,000-jittered-step model (its DPO run's weights
# 81d17d0ffb5fe9ea). assets/idglow while it holds that model, unscaled or scaled (--dpo-scale counts from the adapter
# as trained, so either gives the same weights); once it holds another, that model's copy from git (commit 112193a).
SRC=assets/idglow
.venv/bin/python - "$SRC/provenance.json" <<'PY' || { SRC=runs/idglow-jitter2k; [ -d $SRC ] || {
import json, sys
p = json.load(open(sys.argv[1]))
sys.exit(0 if "81d17d0ffb5fe9ea" in (p.get("source_weights"), p.get("scaled_from", {}).get("source_weights")) else 1)
PY
  rm -rf $SRC.tmp && mkdir -p $SRC.tmp && git archive 112193a assets/idglow | tar -x -C $SRC.tmp --strip-components=2 &&
  mv $SRC.tmp $SRC; }; }
