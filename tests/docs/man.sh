#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The man pages in man/: lint-clean mdoc, they render, and they cover
# what the code accepts, so that they cannot silently drift from it:
#  - every subcommand of "parallax --help" is an item of parallax.8 and
#    every long option of "parallax CMD --help" appears in it;
#  - every long option of parallax-lockd --help and parallaxd --help
#    appears in their pages;
#  - dm-parallax.4 names every optional argument and message keyword
#    that dm-parallax/parallax-target.c compares with strcasecmp().
. "$(dirname "$0")/lib.sh"
need mandoc

PAGES="parallax.8 parallax-lockd.8 parallaxd.8 dm-parallax.4"

for p in $PAGES; do
	if [ ! -f "$MAN/$p" ]; then
		not_ok "$p exists"
		continue
	fi
	if mandoc -T lint -W warning "$MAN/$p" >"$T/lint" 2>&1; then
		ok "$p: mandoc -T lint -W warning is clean"
	else
		not_ok "$p: mandoc -T lint -W warning"
		sed 's/^/# /' "$T/lint" | head -10
	fi
	if mandoc -T utf8 "$MAN/$p" >"$T/$p.txt" 2>"$T/err" && [ ! -s "$T/err" ] &&
		[ "$(wc -l <"$T/$p.txt")" -gt 40 ]; then
		ok "$p renders ($(wc -l <"$T/$p.txt") lines)"
	else
		not_ok "$p does not render"
		sed 's/^/# /' "$T/err" | head -5
	fi
	# Rendered text without overstrike, for the checks below.
	col -b <"$T/$p.txt" >"$T/$p.plain" 2>/dev/null || cp "$T/$p.txt" "$T/$p.plain"
	# A command's page has EXIT STATUS; the kernel target's, whose
	# failures are errno values, has ERRORS instead (mdoc(7)).
	case $p in
	*.8) st="EXIT STATUS" ;;
	*) st=ERRORS ;;
	esac
	sects=(NAME SYNOPSIS DESCRIPTION FILES "$st" EXAMPLES "SEE ALSO")
	for s in "${sects[@]}"; do
		grep -qx "$s" "$T/$p.plain" || echo "$s" >>"$T/$p.nosect"
	done
	if [ -s "$T/$p.nosect" ]; then
		not_ok "$p lacks sections: $(tr '\n' ',' <"$T/$p.nosect")"
	else
		ok "$p has sections ${sects[*]}"
	fi
	# Cross references: each page points at the other three.
	missing=
	for q in $PAGES; do
		[ "$q" = "$p" ] && continue
		name=${q%.*}
		sect=${q##*.}
		grep -q "^\.Xr $name $sect\( \|$\)" "$MAN/$p" || missing="$missing $name($sect)"
	done
	if [ -z "$missing" ]; then
		ok "$p refers to the other pages"
	else
		not_ok "$p lacks .Xr to$missing"
	fi
done

# A command's item in the mdoc source of parallax.8: ".It Cm CMD ...", or
# ".It Xo" followed by ".Cm CMD".
items=$(awk '/^\.It Cm /{ print $3 } /^\.It Xo/{ xo = 1; next }
	xo && /^\.Cm /{ print $2 } { xo = 0 }' "$MAN/parallax.8" | sort -u)
missing=
for c in $(commands); do
	printf '%s\n' "$items" | grep -qx "$c" || missing="$missing $c"
done
if [ -n "$(commands)" ] && [ -z "$missing" ]; then
	ok "parallax.8 has an item for each of the $(commands | wc -l) subcommands"
else
	not_ok "parallax.8 lacks items for:$missing"
fi

# Long options: ".Fl -opt" in the source (mdoc renders it --opt).
for c in $(commands); do
	missing=
	for o in $(long_options "$P" "$c"); do
		# In the page, the option must appear in the command's own item:
		# between ".It ... Cm c" and the next top-level command item.
		awk -v c="$c" '
			/^\.It Cm / { inside = ($3 == c); next }
			/^\.It Xo/ { xo = 1; next }
			xo && /^\.Cm / { inside = ($2 == c); xo = 0; next }
			{ xo = 0 }
			/^\.Sh / { inside = 0 }
			inside' "$MAN/parallax.8" >"$T/item"
		grep -q -- "Fl -${o#--}\( \|$\)" "$T/item" || missing="$missing $o"
	done
	if [ -z "$missing" ]; then
		ok "parallax.8 documents the options of $c: $(long_options "$P" "$c" | tr '\n' ' ')"
	else
		not_ok "parallax.8 lacks options of $c:$missing"
	fi
done
grep -q -- 'Fl -help' "$MAN/parallax.8" && ok "parallax.8 mentions --help" ||
	not_ok "parallax.8 lacks --help"

for pair in "parallax-lockd.8 $LOCKD" "parallaxd.8 $HELPERD"; do
	set -- $pair
	want=$(long_options "$2")
	missing=
	for o in $want; do
		grep -q -- "^\.It Fl -${o#--}\( \|$\)" "$MAN/$1" || missing="$missing $o"
	done
	if [ -n "$want" ] && [ -z "$missing" ]; then
		ok "$1 has an item for each option of $(basename "$2") --help: $(echo $want)"
	else
		not_ok "$1 lacks items for:$missing"
	fi
	grep -q -- "Fl h , Fl -help" "$MAN/$1" && ok "$1 documents -h, --help" ||
		not_ok "$1 lacks -h, --help"
done

# Exit statuses: every page's EXIT STATUS lists 0, 1 and 2 as items, as
# each tool's --help does.
for p in parallax.8 parallax-lockd.8 parallaxd.8; do
	st=$(awk '/^\.Sh EXIT STATUS/{ on = 1; next } /^\.Sh /{ on = 0 }
		on && /^\.It [0-9]/{ print $2 }' "$MAN/$p" | tr '\n' ' ')
	if [ "$st" = "0 1 2 " ]; then
		ok "$p: EXIT STATUS lists 0 1 2"
	else
		not_ok "$p: EXIT STATUS lists '$st'"
	fi
done

# The kernel target: every keyword it compares with strcasecmp(name or
# argv[0], "...") must be a .It Cm item in dm-parallax.4.
SRC=$TOP/dm-parallax/parallax-target.c
keys=$(grep -o 'strcasecmp([^,]*, *"[a-z_]*")' "$SRC" | sed 's/.*"\(.*\)")/\1/' | sort -u)
missing=
for k in $keys; do
	grep -q "^\.It Cm $k\( \|$\)" "$MAN/dm-parallax.4" || missing="$missing $k"
done
if [ "$(echo $keys | wc -w)" -ge 10 ] && [ -z "$missing" ]; then
	ok "dm-parallax.4 has an item for each keyword of parallax-target.c: $(echo $keys)"
else
	not_ok "dm-parallax.4 lacks items for:$missing (keywords: $(echo $keys))"
fi

# The pages are found by man(1) under a man tree, as the units'
# Documentation=man: lines need.
if command -v man >/dev/null; then
	mkdir -p "$T/mt/man4" "$T/mt/man8"
	for p in $PAGES; do
		ln -s "$MAN/$p" "$T/mt/man${p##*.}/$p"
	done
	missing=
	for p in $PAGES; do
		MANPATH=$T/mt man -w "${p##*.}" "${p%.*}" >/dev/null 2>&1 || missing="$missing $p"
	done
	[ -z "$missing" ] && ok "man(1) finds every page in a man tree" ||
		not_ok "man(1) does not find:$missing"
fi

finish
