#!/bin/sh
# Runs the end-to-end monitoring test with Debian's python3 (the first
# python3 on PATH may be one without the standard Debian setup).
exec /usr/bin/python3 "$(dirname "$0")/monitoring_test.py" "$@"
