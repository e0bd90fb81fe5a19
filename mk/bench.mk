# Failover-quality benchmark: the real decision engine replayed on health traces, our policy
# (defaults, tuned for speed) against the seed tutorial's. Prints a table, writes a timeline PNG.
# BENCH_ARGS passes options through, e.g. BENCH_ARGS="--plot-trace flap-20 --plot-policy seed".
BENCH_ARGS ?=

.PHONY: bench bench-failover

bench-failover: $(STAMP) ## Failover quality vs the seed: downtime, false failovers, two bots, EC2 cost (table + PNG)
	$(PY) bench/failover_quality.py $(BENCH_ARGS)

bench: bench-failover
