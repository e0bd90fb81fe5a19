"""The failover-quality benchmark's simulator: health traces replayed through the real decision
engine (ours.py) and through the seed tutorial's watchdog (seed.py), with the standby's boot from
figures.toml. Entry point: bench/failover_quality.py; method and results: docs/benchmarks.md."""
