# checkov in its own virtual environment (it pins its own boto3). Runs offline:
# BC_SKIP_MAPPING=TRUE and no Bridgecrew API key, so nothing leaves the machine.
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

.PHONY: checkov-venv
checkov-venv: $(CHECKOV_STAMP) ## Create the separate virtual environment for checkov

$(CHECKOV_STAMP): tools/checkov/requirements.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r tools/checkov/requirements.txt
	touch $@

TEST_PREREQS += $(CHECKOV_STAMP)
