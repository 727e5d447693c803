#!/usr/bin/env bash
# Run lifeboat's whole test suite on a fresh Debian/Ubuntu machine: installs the Debian
# packages the tests drive for real (ipmitool against ipmi_sim, Prometheus, Alertmanager,
# virsh's test driver, etcd, openssl for test certificates, Chromium for the console's
# browser tests) when missing, then the npm packages, then lint, typecheck, build and
# every test.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(ipmitool openipmi prometheus prometheus-alertmanager libvirt-clients etcd-server openssl chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  # Packaged services (prometheus, etcd) must not start on their own: the tests start
  # their own instances on loopback ports.
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [ -n "$own_policy" ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
fi

# playwright-core drives Debian's Chromium: it never downloads a browser of its own.
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
npm test
