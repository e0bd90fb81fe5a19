# Watchdog benchmarks: they print figures (with a baseline measured in the same run), never assert.
.PHONY: bench-watchdog bench
bench-watchdog: $(STAMP) ## Watchdog benchmarks: cold import with/without Tracer, warm tick/heartbeat on moto
	$(PY) bench/cold_import.py
	$(PY) bench/warm_tick.py

bench: bench-watchdog ## Run every benchmark
