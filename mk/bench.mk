# Failover-quality benchmark: the shipped watchdog (tick, heartbeat endpoint, DynamoDB store) and agent
# lease rule in the shared simulator (hfo_drill.sim), ours against the seed tutorial's script. Prints a
# table with confidence intervals, writes a timeline PNG. BENCH_ARGS passes options, e.g. "--runs 20 --traces outage-10m".
BENCH_ARGS ?=

.PHONY: bench bench-failover bench-failover-results

bench-failover: $(STAMP) ## Failover quality vs the seed: downtime, false failovers, two bots, EC2 cost (table + PNG)
	$(PY) bench/failover_quality.py $(BENCH_ARGS)

bench-failover-results: $(STAMP) ## Re-measure the saved failover results (100 runs, all traces; long) and write them into the docs
	nice $(PY) bench/failover_quality.py --no-plot --jobs 2 --policies all --save bench/failover/results/default.json $(BENCH_ARGS)
	$(PY) bench/failover_quality.py --write-docs

bench: bench-failover
