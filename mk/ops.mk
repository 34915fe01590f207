# Operations: Kubernetes manifests, Grafana dashboard, alert rules (k8s/) and
# the OCI image (image/). Included by the top Makefile.
#
#   make test        also runs //tests/k8s and //tests/rules (needs the
#                    packages below, kubectl, and `npm ci` in tests/k8s,
#                    which ops-test-prep does)
#   make image       image/out/taskd-oci.tar: taskd, taskctl, taskd-worker and
#                    their shared libraries, built with buildah (root), then
#                    checked by running it (image/check.sh)
#   make k8s-rules   regenerate k8s/monitoring/prometheusrule.yaml from
#                    k8s/monitoring/prometheus/taskd-rules.yaml
#
# kubectl is not a Debian 12 package (kubernetes-client is 1.20, whose
# kustomize is too old for these manifests): CI must provide kubectl >= 1.27
# on PATH; ops-test-prep fails early, naming it, when it is missing.

# promtool (rules tests), buildah (image), Debian's python3 with gRPC and YAML
# (probing taskd as kubelet does), Node for the schema validation.
PACKAGES += prometheus buildah python3-grpcio python3-yaml nodejs

IMAGE ?= localhost/taskd:latest
IMAGE_ARCHIVE ?= image/out/taskd-oci.tar

TEST_PREP += ops-test-prep

.PHONY: ops-test-prep image k8s-rules

ops-test-prep:
	@command -v kubectl >/dev/null || { echo "ops: kubectl (with kustomize) is required on PATH for tests/k8s" >&2; exit 1; }
	@command -v npm >/dev/null || { $(SUDO) apt-get install -y -q npm; }
	@if [ ! -f tests/k8s/node_modules/.package-lock.json ] || \
	    [ tests/k8s/package-lock.json -nt tests/k8s/node_modules/.package-lock.json ]; then \
	  cd tests/k8s && npm ci --no-audit --no-fund; \
	fi

image: deps
	$(BAZEL) build //services:taskd //clients/cpp:taskctl //clients/cpp:taskd-worker
	$(SUDO) image/build.sh $(IMAGE_ARCHIVE) $(IMAGE)
	$(SUDO) image/check.sh $(IMAGE_ARCHIVE)

k8s-rules:
	k8s/monitoring/gen-prometheusrule.sh > k8s/monitoring/prometheusrule.yaml
