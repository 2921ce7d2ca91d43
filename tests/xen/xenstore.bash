# SPDX-License-Identifier: GPL-2.0
# A recording stand-in for xenstore-read, -write, -exists, -rm and -list,
# for running Xen's hotplug scripts without Xen (tests/xen/hotplug.sh).
#
# Run as "bash xenstore.bash OP ARGS...": the test installs one small
# wrapper per command.  The store is the file $XS_STORE, one
# "path<TAB>value" line per node; every call is appended to $XS_LOG as
# "xenstore-OP ARGS... -> status".  Paths are used as given (the hotplug
# scripts use relative "backend/vbd/D/N" paths and absolute
# "/local/domain/..." ones; they are not mixed up here).
set -u
op=$1
shift
args="$*"
: "${XS_STORE:?}" "${XS_LOG:?}"
touch "$XS_STORE"

get() { awk -F '\t' -v k="$1" '$1 == k { v = substr($0, length(k) + 2); f = 1 } END { if (f) print v; exit !f }' "$XS_STORE"; }
del() {
	awk -F '\t' -v k="$1" '$1 != k && index($1, k "/") != 1' "$XS_STORE" >"$XS_STORE.new"
	mv "$XS_STORE.new" "$XS_STORE"
}

rc=0
case $op in
read)
	for p in "$@"; do
		get "$p" || { echo "couldn't read path $p" >&2; rc=1; break; }
	done
	;;
write)
	if [ $(($# % 2)) != 0 ] || [ $# = 0 ]; then
		echo "Usage: xenstore-write key value [...]" >&2
		rc=1
	fi
	while [ $rc = 0 ] && [ $# -ge 2 ]; do
		case $2 in
		*$'\n'*|*$'\t'*) echo "xenstore stand-in: no tabs or newlines in values" >&2; rc=1; break ;;
		esac
		awk -F '\t' -v k="$1" '$1 != k' "$XS_STORE" >"$XS_STORE.new"
		printf '%s\t%s\n' "$1" "$2" >>"$XS_STORE.new"
		mv "$XS_STORE.new" "$XS_STORE"
		shift 2
	done
	;;
exists)
	for p in "$@"; do
		awk -F '\t' -v k="$p" '$1 == k || index($1, k "/") == 1 { f = 1 } END { exit !f }' "$XS_STORE" || rc=1
	done
	;;
rm)
	for p in "$@"; do
		del "$p"
	done
	;;
list)
	awk -F '\t' -v k="$1/" 'index($1, k) == 1 { s = substr($1, length(k) + 1); sub("/.*", "", s); if (!(s in seen)) { seen[s] = 1; print s } }' "$XS_STORE"
	;;
*)
	echo "xenstore stand-in: unknown operation $op" >&2
	rc=1
	;;
esac
echo "xenstore-$op $args -> $rc" >>"$XS_LOG"
exit $rc
