#!/usr/bin/env bash
# Installs what the browser test (go test ./e2e/) needs: Chromium from the
# distribution, unless one is on PATH or CHROMIUM_PATH is set, and the npm
# packages pinned in e2e/package-lock.json. Safe to run again.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

if [[ -z "${CHROMIUM_PATH:-}" ]] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
	sudo=()
	if [[ "$(id -u)" -ne 0 ]] && command -v sudo >/dev/null; then
		sudo=(sudo -n)
	fi
	if ! command -v apt-get >/dev/null || [[ "$(id -u)" -ne 0 && ${#sudo[@]} -eq 0 ]]; then
		echo "install.sh: chromium is not on PATH; install it (apt-get install -y chromium) or set CHROMIUM_PATH" >&2
		exit 1
	fi
	"${sudo[@]}" apt-get update
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi

npm ci --no-audit --no-fund
