#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks use, only those missing.
# logger (bsdutils) and rsyslog are the real syslog senders of the tests; rsyslog-gnutls gives
# rsyslog TLS; openssl checks certificates and, later, signatures and timestamps; chromium runs
# the web console's browser tests (tests/e2e, Playwright with executable_path).
# nginx + libnginx-mod-stream and prometheus (promtool) check and run deploy/ (tests/deploy).
set -euo pipefail
packages=(bsdutils rsyslog rsyslog-gnutls openssl procps slapd ldap-utils chromium nginx libnginx-mod-stream prometheus poppler-utils fonts-dejavu-core)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# rsyslog's package may start a system daemon; the tests run their own instances.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet rsyslog 2>/dev/null; then
  $SUDO systemctl stop rsyslog || true
fi
