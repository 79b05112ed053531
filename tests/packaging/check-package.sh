#!/usr/bin/env bash
# tests/packaging/check-package.sh : Buildroot's own linter (utils/check-package, vendored in
# ../shared/vendor/buildroot) over the Buildroot external tree (board/buildroot) and the SysV
# init script (board/rootfs/etc/init.d/S50baton). check-package takes an init script for one
# when it is named package/<pkg>/S<NN><daemon>, as in a Buildroot tree, so the files are
# checked in a temporary copy laid out that way (the script as package/baton/S50baton, mode
# 0644 as Buildroot keeps it; baton.mk installs it 0755). Prints "ok - FILE" / "not ok - FILE"
# with check-package's warnings, and "check-package: N passed, M failed".
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
VENDOR=$REPO/../shared/vendor/buildroot
[ -f "$VENDOR/utils/check-package" ] || { echo "check-package: no $VENDOR/utils/check-package" >&2; exit 2; }
VENDOR=$(cd "$VENDOR" && pwd)

# check-package imports python-magic and flake8 and runs shellcheck on init scripts: Debian's
# packages, for Debian's python3 (another python3 may come first on PATH)
PY=/usr/bin/python3
need=()
[ -x "$PY" ] || need+=(python3)
{ [ -x "$PY" ] && "$PY" -c 'import magic' 2>/dev/null; } || need+=(python3-magic)
{ [ -x "$PY" ] && "$PY" -c 'import flake8.main.application' 2>/dev/null; } || need+=(python3-flake8)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
if [ ${#need[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -qq || echo "warning: apt-get update reported errors" >&2
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/baton-check-package.XXXXXX")
trap 'rm -rf "$T"' EXIT

# the external tree as it is, plus the init script where a Buildroot package keeps it
cp -R "$REPO/board/buildroot/." "$T/"
install -m 0644 "$REPO/board/rootfs/etc/init.d/S50baton" "$T/package/baton/S50baton"

# file in the temporary tree -> file in the repository
files=(
	"Config.in:board/buildroot/Config.in"
	"external.desc:board/buildroot/external.desc"
	"external.mk:board/buildroot/external.mk"
	"package/baton/Config.in:board/buildroot/package/baton/Config.in"
	"package/baton/baton.mk:board/buildroot/package/baton/baton.mk"
	"package/baton/S50baton:board/rootfs/etc/init.d/S50baton"
)
. "$REPO/tests/tools/check.sh"
for f in "${files[@]}"; do
	tmp=${f%%:*} repo=${f#*:}
	set +e
	out=$(cd "$T" && "$PY" "$VENDOR/utils/check-package" --br2-external "$tmp" 2>&1)
	rc=$?
	set -e
	# a file check-package has no rules for counts as neither
	if [ $rc -eq 0 ] && grep -q '^0 lines processed' <<<"$out"; then
		echo "# $repo: no check-package rules apply"
		continue
	fi
	if [ $rc -eq 0 ]; then
		echo "ok - check-package $repo"
		passed=$((passed + 1))
	else
		echo "not ok - check-package $repo"
		sed "s|^|#   |; s|$tmp|$repo|" <<<"$out"
		failed=$((failed + 1))
	fi
done

finish check-package
