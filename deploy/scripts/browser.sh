#!/usr/bin/env bash
# Make sure Debian's chromium is present for the console's browser tests and `make
# screenshots` (Playwright drives it through executable_path: no browser download here).
set -Eeuo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
if [[ $(id -u) -ne 0 ]]; then
  echo "browser.sh: chromium missing and not root: install it with apt-get install chromium" >&2
  exit 1
fi
echo "browser.sh: installing chromium from Debian"
# policy-rc.d 101 keeps the package from starting system services.
policy=/usr/sbin/policy-rc.d
created=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null 2>&1 ||
  { apt-get update -qq >/dev/null || true; apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; }
((created)) && rm -f "$policy"
command -v chromium >/dev/null
