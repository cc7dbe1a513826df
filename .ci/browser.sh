#!/usr/bin/env bash
# The browser test's browser: Debian's chromium package (Playwright from PyPI drives it through
# executable_path; no `playwright install`, which would download a browser of its own).
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends chromium fonts-noto-cjk >/dev/null
fi
/usr/bin/chromium --version
