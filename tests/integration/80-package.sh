#!/usr/bin/env bash
# The Debian package: configures a build of its own for /usr and
# /etc/gradeq/gradeq.conf, runs cpack -G DEB, and checks the file list (the
# programs, the systemd units, a man page for every program and for the
# configuration, the configuration as a conffile), the maintainer scripts,
# and that Depends names the Debian package of every library the programs
# load. Needs no server.
set -euo pipefail
GRADEQ_SRC=${GRADEQ_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TEST_NAME=$(basename "$0" .sh)
die() {
	printf 'FAIL %s: %s\n' "$TEST_NAME" "$*" >&2
	exit 1
}
log() {
	printf '%s: %s\n' "$TEST_NAME" "$*" >&2
}
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
fi
for c in cmake cpack dpkg-deb dpkg-query ldd; do
	command -v "$c" >/dev/null || { printf 'SKIP %s: %s not found\n' "$TEST_NAME" "$c" >&2; exit 77; }
done

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(
	cd "$WORK"
	cmake "$GRADEQ_SRC" -DGRADEQ_DEFAULT_CONF=/etc/gradeq/gradeq.conf -DCMAKE_INSTALL_PREFIX=/usr \
		-DGRADEQ_INTEGRATION=OFF >cmake.log 2>&1 || { tail -n 20 cmake.log >&2; exit 1; }
	cpack -G DEB >cpack.log 2>&1 || { tail -n 20 cpack.log >&2; exit 1; }
) || die "cpack -G DEB failed"
DEB=$(find "$WORK" -maxdepth 1 -name 'gradeq_*.deb' -print -quit)
[[ -n $DEB ]] || die "no .deb in $WORK"
log "built $(basename "$DEB")"

dpkg-deb -c "$DEB" | awk '{print $NF}' | sed 's#^\./#/#' >"$WORK/files"
programs=()
for src in "$GRADEQ_SRC"/src/bin/*.c; do
	programs+=("$(basename "$src" .c)")
done
want=(/etc/gradeq/gradeq.conf /lib/systemd/system/gradeq-consumer@.service
	/lib/systemd/system/gradeq-web.service
	/lib/systemd/system/gradeq-follow@.service
	/usr/share/man/man5/gradeq.conf.5)
for p in "${programs[@]}"; do
	want+=("/usr/bin/$p" "/usr/share/man/man1/$p.1")
done
for f in "${want[@]}"; do
	grep -Fxq "$f" "$WORK/files" || die "$f is not in the package"
done
log "files: ${#programs[@]} programs with their man pages, the units, gradeq.conf(5), the configuration"

dpkg-deb -e "$DEB" "$WORK/control"
grep -Fxq /etc/gradeq/gradeq.conf "$WORK/control/conffiles" || die "gradeq.conf is not a conffile"
grep -q 'adduser.* --system' "$WORK/control/postinst" || die "postinst creates no system user"
[[ -x $WORK/control/postrm ]] || die "no postrm"

# Every library the programs need comes from a package in Depends.
depends=$(dpkg-deb -f "$DEB" Depends)
dpkg-deb -x "$DEB" "$WORK/root"
for p in "${programs[@]}"; do
	ldd "$WORK/root/usr/bin/$p" | awk '$3 ~ /^\// {print $3}'
done | sort -u | while read -r lib; do
	pkg=$(dpkg-query -S "$(readlink -f "$lib")" 2>/dev/null | head -n1 | cut -d: -f1) ||
		pkg=$(dpkg-query -S "$lib" 2>/dev/null | head -n1 | cut -d: -f1) || true
	[[ -n $pkg ]] || continue
	case $pkg in libc6 | libgcc-s1 | libstdc++6) continue ;; esac
	# only direct dependencies need naming: indirect ones come with them
	for p in "${programs[@]}"; do
		if readelf -d "$WORK/root/usr/bin/$p" | grep -q "NEEDED.*\[$(basename "$lib")\]"; then
			[[ ", $depends," == *", $pkg,"* || ", $depends," == *", $pkg "* ]] ||
				die "$p needs $(basename "$lib") from $pkg, which Depends ($depends) does not name"
		fi
	done
done
log "Depends: $depends"
log "PASS"
