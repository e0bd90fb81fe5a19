# tests/docs: the tools that check the documentation's commands and diagrams, each in its own
# environment so neither touches .venv: the AWS CLI (it vendors its own botocore) and Mermaid's
# parser (Node; from the npm registry, versions locked in tests/docs/mermaid/package-lock.json).
AWSCLI_VENV := .venv-awscli
AWSCLI_STAMP := $(AWSCLI_VENV)/.installed
MERMAID_DIR := .venv-mermaid
MERMAID_STAMP := $(MERMAID_DIR)/.installed

.PHONY: awscli-venv docs-mermaid test-docs
awscli-venv: $(AWSCLI_STAMP) ## The AWS CLI in its own venv, for tests/docs

$(AWSCLI_STAMP): tests/docs/requirements-awscli.txt
	$(PYTHON) -m venv $(AWSCLI_VENV)
	$(AWSCLI_VENV)/bin/python -m pip install --quiet --no-deps -r tests/docs/requirements-awscli.txt
	touch $@

docs-mermaid: $(MERMAID_STAMP) ## Mermaid's parser (npm ci into .venv-mermaid), for tests/docs

# Without npm the target says so and installs nothing: tests/docs/test_mermaid.py then skips loudly
# (and fails under CI=true), while the rest of `make test` runs.
$(MERMAID_STAMP): tests/docs/mermaid/package.json tests/docs/mermaid/package-lock.json
	@if ! command -v npm >/dev/null 2>&1; then echo "npm not found: Mermaid diagrams will not be checked"; exit 0; fi; \
	rm -rf $(MERMAID_DIR) && mkdir -p $(MERMAID_DIR) && \
	cp tests/docs/mermaid/package.json tests/docs/mermaid/package-lock.json $(MERMAID_DIR)/ && \
	(cd $(MERMAID_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) && \
	touch $@

test-docs: $(STAMP) $(AWSCLI_STAMP) $(MERMAID_STAMP) ## Only the documentation tests (tests/docs)
	$(PY) -m pytest tests/docs $(PYTEST_ARGS)

TEST_PREREQS += $(AWSCLI_STAMP) $(MERMAID_STAMP)
