"""The failover simulator shared by the benchmark (bench/failover) and the property tests
(tests/sim): the shipped watchdog and agent lease rule, driven through a simulated world.

Part of hfo-drill, which is never deployed: the Lambda package (lambda/build.py) ships
hfo_watchdog and hfo_protocol only.
"""
