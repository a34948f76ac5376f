#!/usr/bin/env bash
# Install the headless browser that tests/test_browser.py drives (Debian's chromium, used by
# Playwright through executable_path; `playwright install` is never needed).
# Idempotent: does nothing when /usr/bin/chromium exists. Never fails the caller: where Chromium
# cannot be installed (no root, no apt-get, no network), it says why and the browser test skips.
set -u
CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser: apt-get not found; install Chromium at $CHROMIUM yourself (browser test will be skipped)" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "install_browser: not root and no password-less sudo; cannot install chromium (browser test will be skipped)" >&2
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
if $SUDO apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
    || { $SUDO apt-get update -qq >/dev/null 2>&1 \
         && $SUDO apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; }; then
    echo "install_browser: installed $($CHROMIUM --version 2>/dev/null || echo chromium)" >&2
else
    echo "install_browser: apt-get could not install chromium (browser test will be skipped)" >&2
fi
exit 0
