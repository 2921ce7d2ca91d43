#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# bash completion for parallax (userspace/completion/parallax): drive the
# completion function as readline would, in a non-interactive bash, and
# check COMPREPLY against the tool's --help and a real store.
. "$(dirname "$0")/lib.sh"

BC=/usr/share/bash-completion/bash_completion
[ -r "$BC" ] || { echo "Bail out! $BC missing (bash-completion)"; exit 1; }
# shellcheck disable=SC1090
. "$BC"
# shellcheck disable=SC1091
. "$TOP/userspace/completion/parallax"
if ! declare -F _parallax >/dev/null ||
	[ "$(complete -p parallax 2>/dev/null)" != "complete -F _parallax parallax" ]; then
	echo "Bail out! the completion script did not define _parallax"
	exit 1
fi

# comp LINE: complete at the end of LINE (words split on blanks; a
# trailing blank starts an empty word); sets GOT to the sorted COMPREPLY,
# space separated.  The first word is the tool's path, as typed.
comp() {
	local line=$1
	local -a w
	read -r -a w <<<"$line"
	[[ $line == *' ' ]] && w+=("")
	COMP_LINE=$line
	COMP_POINT=${#line}
	COMP_WORDS=("${w[@]}")
	COMP_CWORD=$((${#w[@]} - 1))
	COMPREPLY=()
	_parallax "${w[0]}" "${w[COMP_CWORD]}" "${w[COMP_CWORD - 1]}" 2>"$T/comp.err"
	GOT=$(printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort | tr '\n' ' ')
	GOT=${GOT% }
}

# expect DESC LINE WANT: the completions of LINE are exactly WANT.
expect() {
	local want
	comp "$2"
	want=$(printf '%s\n' $3 | sed '/^$/d' | sort | tr '\n' ' ')
	want=${want% }
	if [ "$GOT" = "$want" ] && [ ! -s "$T/comp.err" ]; then
		ok "$1: '$2' -> '$GOT'"
	else
		not_ok "$1: '$2' -> '$GOT', wanted '$want'"
		sed 's/^/# /' "$T/comp.err" | head -5
	fi
}

# Subcommands: exactly those of "parallax --help".
all=$(commands | tr '\n' ' ')
expect "all subcommands" "$P " "$all"
expect "subcommand prefix" "$P sn" "$(commands | grep '^sn')"
expect "subcommand prefix" "$P de" "$(commands | grep '^de')"
expect "no subcommand" "$P zz" ""

# Options: for every subcommand, exactly the long options its --help
# prints (plus --help), so the script cannot drift from the tool.
for c in $(commands); do
	expect "options of $c" "$P $c x.img --" "$(long_options "$P" "$c") --help"
done
expect "option prefix" "$P list x.img --j" "--json"
expect "option prefix" "$P unlock x.img --ho" "--host --host-id"
expect "option prefix before DEV" "$P format --ex" "--extent-size"

# A real store: two VDIs, a labelled and an unlabelled snapshot, a clone,
# a deleted snapshot with a label.
S=$T/store.img
truncate -s 64M "$S"
{
	"$P" format "$S" --extent-size 4M &&
		"$P" create "$S" web --size 16M &&
		"$P" create "$S" db --size 8M &&
		"$P" snapshot "$S" web --label golden &&
		"$P" snapshot "$S" web &&
		"$P" snapshot "$S" db --label db-base &&
		"$P" snapshot "$S" db --label old &&
		"$P" delete "$S" db@old &&
		"$P" create "$S" web2 --from golden
} >"$T/setup.out" 2>&1 || {
	sed 's/^/# /' "$T/setup.out"
	echo "Bail out! cannot make the test store"
	exit 1
}
before=$(sha256sum <"$S")

# DEV: files and block devices.
expect "DEV file" "$P list $T/sto" "$S"
expect "DEV under /dev" "$P check /dev/nul" "/dev/null"

# VDI names.
expect "VDI names" "$P snapshot $S " "web db web2"
expect "VDI name prefix" "$P attach $S w" "web web2"
expect "VDI names after options" "$P snaplog --json $S d" "db"
expect "--vdi VDI" "$P unlock $S --registry --vdi " "web db web2"
expect "VDI or snapshot" "$P export $S " "web db web2 golden db-base"
expect "import FILE" "$P import $S web $T/sto" "$S"

# Snapshot labels and VDI@... names.
expect "--from labels and VDI@" "$P create $S new --from " \
	"golden db-base web@ db@ web2@"
expect "--from label prefix" "$P create $S new --from go" "golden"
expect "--from=label prefix" "$P create $S new --from=go" "golden"
expect "--from VDI@" "$P create $S new --from web@" "web@1 web@2 web@golden"
expect "deleted snapshot left out" "$P create $S new --from db@" \
	"db@1 db@db-base"
expect "one VDI@ (no space after it)" "$P create $S new --from web2" "web2@"
expect "label's SNAPSHOT" "$P label $S web@g" "web@golden"
expect "delete VDI@" "$P delete $S web@" "web@1 web@2 web@golden"

# Values that cannot be guessed, and a missing store: nothing, quietly.
expect "--size value" "$P create $S new --size " ""
expect "new VDI name" "$P create $S " ""
expect "missing store" "$P snapshot $T/nothere " ""
expect "not a store" "$P snapshot /dev/null " ""

after=$(sha256sum <"$S")
if [ "$before" = "$after" ]; then
	ok "completion left the store unchanged"
else
	not_ok "completion changed the store"
fi

finish
