# Sourced by scripts/test: headless Chromium and its WebDriver for the page tests, from
# Debian's packages (chromium, chromium-driver). Installed when missing and we are root
# with apt-get; otherwise those tests are skipped (or fail, with CHARTBUILD_REQUIRE_BROWSER=1).
if { ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; } \
    && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Chromium and chromium-driver for the page tests" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
