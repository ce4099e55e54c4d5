# Sourced by chain.sh and dpo_seed.sh (which set B, O and R): `unseen NAME MODEL BENCHMARK GUIDANCE [SCHEDULE]`
# scores MODEL on the unseen records of data/cast (the 100 `--limit 100` leaves out), noise seeds 0 and 1000, into
# $O/NAME-seed*, skipping what is done, and keeps the summaries and per-record scores in $R/NAME-seed*.
unseen() {
  for seed in 0 1000; do
    o=$O/$1-seed$seed
    [ -f $o/$3.json ] || $B/idglow train sft-eval --run $2 --benchmark data/cast/$3.jsonl --limit 100 --complement \
      --id-guidance $4 ${5:+--schedule $5} --seed $seed --out $o
    mkdir -p $R/$1-seed$seed && cp $o/$3.json $o/$3.scores.jsonl $R/$1-seed$seed/
  done
}
