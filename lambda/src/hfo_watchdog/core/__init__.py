"""The watchdog's decision core: pure functions of the stored state and the observations, with no
I/O and nothing beyond the standard library (tests/watchdog/test_boundaries.py holds it to that).
`engine` is its public API; the other modules are its parts (docs/state-machine.md)."""
