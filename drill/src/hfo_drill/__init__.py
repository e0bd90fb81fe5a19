"""The whole-system drill (`make demo`, `python -m hfo_drill`) and the harness pieces the tests share with it."""
