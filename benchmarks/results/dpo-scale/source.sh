# Sourced by chain.sh and confirm.sh: SRC, the model they scale, the shipped 2,000-jittered-step model (its DPO run's
# weights 81d17d0ffb5fe9ea); once assets/idglow holds another, that one's copy from git (commit 112193a).
SRC=assets/idglow
grep -q '"source_weights": "81d17d0ffb5fe9ea"' $SRC/provenance.json || { SRC=runs/idglow-jitter2k; [ -d $SRC ] || {
  rm -rf $SRC.tmp && mkdir -p $SRC.tmp && git archive 112193a assets/idglow | tar -x -C $SRC.tmp --strip-components=2 &&
  mv $SRC.tmp $SRC; }; }
