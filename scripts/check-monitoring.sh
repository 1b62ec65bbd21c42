#!/usr/bin/env bash
# Validates the Prometheus alerting rules with promtool (Debian's prometheus package, installed
# here when missing; running it again does nothing more). The metric names of the rules and of the
# Grafana dashboards are checked against the code by TestRulesAndDashboards in
# services/devstack/deploytest, which runs with the Go tests.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "check-monitoring: promtool is missing and cannot be installed here (need root and apt-get)" >&2
    exit 1
  fi
  echo "check-monitoring: installing Debian's prometheus package for promtool" >&2
  export DEBIAN_FRONTEND=noninteractive
  # The package's postinst starts nothing in a container without systemd; only promtool is used.
  apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
promtool check rules deployments/prometheus/rules/*.yml
