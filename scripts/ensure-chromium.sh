#!/usr/bin/env bash
# The admin console's browser tests drive Debian's Chromium. Install it when it is missing (as root,
# from Debian's packages). If it cannot be installed, say so: the browser tests then skip with a
# message and everything else still runs.
set -uo pipefail
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: chromium is missing and cannot be installed here (need root and apt-get); browser tests will skip" >&2
  exit 0
fi
echo "ensure-chromium: installing Debian's chromium for the console browser tests" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; }; then
  echo "ensure-chromium: apt-get install chromium failed; browser tests will skip" >&2
fi
exit 0
