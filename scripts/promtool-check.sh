#!/usr/bin/env bash
# Checks the alert rules with Prometheus' own tool: syntax (promtool check rules) and the unit
# tests beside them (promtool test rules). Installs Debian's prometheus package if promtool is
# missing (needs root or sudo, and apt).
set -euo pipefail
cd "$(dirname "$0")/.."
rules=satellites/monitor/prometheus

if ! command -v promtool >/dev/null 2>&1; then
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq prometheus
fi

promtool --version | head -n 1
promtool check rules "$rules/alerts.yml"
promtool test rules "$rules/alerts_test.yml"
