# Terraform tooling: the watchdog's Lambda package and the cost estimate.
# The package is built outside Terraform (no archive provider) by lambda/build.py, which is
# reproducible: unchanged sources give a byte-identical zip, so `terraform plan` stays empty.
LAMBDA_ZIP := build/lambda/hfo-watchdog.zip
LAMBDA_INPUTS := lambda/build.py lambda/requirements.txt lambda/build-lock.txt \
	$(shell find lambda/src protocol/src -type f ! -path '*/__pycache__/*' 2>/dev/null)

.PHONY: lambda-zip cost

lambda-zip: $(LAMBDA_ZIP) ## Build the reproducible watchdog Lambda package (build/lambda/)

$(LAMBDA_ZIP): $(STAMP) $(LAMBDA_INPUTS)
	$(PY) lambda/build.py --out $@

cost: $(STAMP) ## Monthly AWS cost, idle and per failover hour (TFVARS=file.tfvars REGION=eu-west-3)
	$(PY) tools/cost/cost.py $(if $(TFVARS),--tfvars $(TFVARS)) $(if $(REGION),--region $(REGION))

# The Terraform tests deploy this package.
TEST_PREREQS += $(LAMBDA_ZIP)
