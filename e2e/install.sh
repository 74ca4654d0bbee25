#!/usr/bin/env bash
# Installs what the e2e tests (go test ./e2e/) need: Chromium and nginx from
# the distribution, unless they are on PATH (or CHROMIUM_PATH is set), and
# the npm packages pinned in e2e/package-lock.json. Safe to run again.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

# Debian packages the tests need and do not find: Chromium for the browser
# tests, nginx (nginx-light) for the behind-a-proxy test.
packages=()
if [[ -z "${CHROMIUM_PATH:-}" ]] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
	packages+=(chromium)
fi
if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
	packages+=(nginx-light)
fi
if [[ ${#packages[@]} -gt 0 ]]; then
	sudo=()
	if [[ "$(id -u)" -ne 0 ]] && command -v sudo >/dev/null; then
		sudo=(sudo -n)
	fi
	if ! command -v apt-get >/dev/null || [[ "$(id -u)" -ne 0 && ${#sudo[@]} -eq 0 ]]; then
		echo "install.sh: ${packages[*]} missing; install them (apt-get install -y ${packages[*]}) or set CHROMIUM_PATH" >&2
		exit 1
	fi
	"${sudo[@]}" apt-get update
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}"
fi

npm ci --no-audit --no-fund
