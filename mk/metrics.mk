# Metrics: taskd's /metrics (prometheus-cpp) and the end-to-end monitoring
# test (//tests/monitoring), which runs a real Prometheus server and uses
# Debian's python3 for its HTTP/JSON checks.
PACKAGES += prometheus-cpp-dev prometheus python3

.PHONY: metrics
# Scrapes a running `make run` server once.
metrics:
	@curl -fsS http://127.0.0.1:9464/metrics || \
	  python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:9464/metrics").read().decode())'
