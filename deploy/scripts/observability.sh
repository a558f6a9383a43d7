#!/usr/bin/env bash
# Make sure Debian's prometheus and prometheus-alertmanager binaries are present
# (for the tests that drive the real programs). Installing them must not start
# system services: this only needs the binaries; tests start their own instances.
set -Eeuo pipefail
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
((${#need[@]} == 0)) && exit 0
if [[ $(id -u) -ne 0 ]]; then
  echo "observability.sh: ${need[*]} missing and not root: install them with apt-get" >&2
  exit 1
fi
echo "observability.sh: installing ${need[*]} from Debian"
# policy-rc.d 101 keeps the packages from starting system services.
policy=/usr/sbin/policy-rc.d
created=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || true
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
((created)) && rm -f "$policy"
command -v prometheus >/dev/null && command -v prometheus-alertmanager >/dev/null
