#!/usr/bin/env bash
# Debian packages the grader and its tests need, installed when missing (as root, with apt-get):
#   bubblewrap  the jail (bwrap); util-linux: prlimit and setpriv (usually there already)
#   postgresql  only when no PostgreSQL server binaries are found (tests/pg_server.py)
#   redis-server  the Celery executor's broker in tests/test_grader_celery.py (tests/redis_server.py)
#   chromium, chromium-driver  the headless browser of tests/test_browser.py and tests/test_site.py
#   npm         fetches the static site's pinned scripts (make site-deps, scripts/build_site.py vendor)
# Without root or apt-get it says what is missing: the jail's tests then skip, saying why.
set -euo pipefail
need=()
command -v bwrap >/dev/null || need+=(bubblewrap)
{ command -v prlimit >/dev/null && command -v setpriv >/dev/null; } || need+=(util-linux)
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    need+=(postgresql)
fi
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
command -v redis-server >/dev/null || need+=(redis-server)
command -v npm >/dev/null || need+=(npm)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "note: missing system packages: ${need[*]} (install them as root; the tests that need them will skip)"
    exit 0
fi
echo "installing system packages: ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
