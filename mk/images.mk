# The two workload images (the bot and hfo-site), built and pushed for every platform a site may run:
# the standby is arm64 by default (t4g) and most laptops are amd64, so one platform is never enough
# (a foreign one fails with "exec format error"). Tags come from k8s/base/kustomization.yaml, the one
# place that names them. Needs Docker with buildx, a registry login (docker login ghcr.io) and, on
# Linux, QEMU's binfmt handlers for the other architecture (docs/walkthrough.md step 2).
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
IMAGE_BUILDER ?= hfo-multiarch

.PHONY: images
images: $(STAMP) ## Build and push both images for linux/amd64 and linux/arm64 (docker buildx), tagged from k8s/base/kustomization.yaml
	$(PY) tools/images/refs.py --check
	docker buildx inspect $(IMAGE_BUILDER) >/dev/null 2>&1 || docker buildx create --name $(IMAGE_BUILDER) --driver docker-container
	docker buildx build --builder $(IMAGE_BUILDER) --platform $(IMAGE_PLATFORMS) --tag $(shell $(PY) tools/images/refs.py --tag hfo-bot) --file bot/Dockerfile --push bot
	docker buildx build --builder $(IMAGE_BUILDER) --platform $(IMAGE_PLATFORMS) --tag $(shell $(PY) tools/images/refs.py --tag hfo-site) --file healthcheck/Dockerfile --push .
