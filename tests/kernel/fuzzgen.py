#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Fuzzed inputs for the parallax target (tests/kernel/fuzz.sh).

fuzzgen.py tables SEED COUNT
    table lines "<start> <len> parallax <dev> <vdi> [#opts opt...]"
fuzzgen.py messages SEED COUNT
    messages for "dmsetup message <dev> 0 <message>"
fuzzgen.py gcreclaim SEED COUNT
    gc_reclaim messages that name no block to free (their hex is all
    zeros), sent while a GC epoch is active

Writes one input a line, raw bytes (never a newline or a NUL), to
standard output: first the fixed regression cases of that kind, then
COUNT inputs drawn deterministically from SEED: mutations of valid
inputs (tokens dropped, duplicated, swapped, inserted; numbers replaced
by 0, -1, 2^64-1, 2^64, 2^64+1, huge, hex, octal, signed; very long
strings, non-ASCII and control bytes, backslashes; wrong option counts)
and purely random token sequences.

Placeholders that the guest replaces: @SZ@ (VDI length in sectors),
@LG@ (lock generation of the claimed VDI), @E@/@EG@ and @M@/@MG@ (a data
and a metadata extent the device holds, and their generations), @GE@
(the active GC epoch in the gcreclaim set).
"""
import random
import sys

U64 = 2 ** 64

# Inputs that once found a bug (or probe an edge worth keeping): always
# run first, whatever the seed.
REGRESS_TABLES = [
    # sscanf("%llu") wrapped 2^64 + 1 to VDI 1 and loaded that VDI.
    b"0 @SZ@ parallax /dev/ubda 18446744073709551617 1 read_only",
    b"0 @SZ@ parallax /dev/ubda 36893488147419103234 1 read_only",
    b"0 @SZ@ parallax /dev/ubda 2 1 read_only",
    b"0 @SZ@ parallax /dev/ubda 2 3 read_only snapshot_seq 18446744073709551615",
    b"0 @SZ@ parallax /dev/ubda 2 13 read_only error_if_no_space cache_mb 1 host_id 4294967295 "
    b"low_water 18446744073709551615 no_space_timeout 86400 lock_gen 0",
    b"0 @SZ@ parallax /dev/ubda 1 4 host_id 1 lock_gen @LG@",
    # dm_read_arg_group()'s sscanf("%u") wrapped the count 2^63 to 0, and
    # the arguments after the count were ignored: no read_only.
    b"0 @SZ@ parallax /dev/ubda 1 9223372036854775808 read_only",
    b"0 @SZ@ parallax /dev/ubda 1 0 read_only",
    b"0 @SZ@ parallax /dev/ubda 1 4294967297 read_only",
    b"0 @SZ@ parallax /dev/ubda 2 3 read_only host_id 4294967297",
    b"0 @SZ@ parallax /dev/ubda 2 3 read_only cache_mb 4294967300",
    b"0 @SZ@ parallax /dev/ubda 000000000000000000000000000001 2 lock_gen @LG@",
]
REGRESS_MESSAGES = [
    # islower() takes Latin-1 letters: "lockd" took bytes >= 0xdf.
    b"lockd \xe9t\xe9",
    b"lockd \xff",
    b"lockd connected",
    b"add_extent @E@ 18446744073709551615",
    b"add_extent 18446744073709551616",
    b"release_extent 18446744073709551617",
    b"gc_reclaim 1 @E@ @EG@ 18446744073709551608 00",
    b"gc_end 18446744073709551616",
]
REGRESS_GC = [
    b"gc_reclaim @GE@ @E@ @EG@ 0 00",
    b"gc_reclaim @GE@ @E@ @EG@ 18446744073709551608 00",
    b"gc_reclaim @GE@ @E@ @EG@ 1016 0000",
    b"gc_reclaim @GE@ @E@ @EG@ 0 " + b"00" * 1025,
]

TABLE_BASES = [
    b"0 @SZ@ parallax /dev/ubda 2",
    b"0 @SZ@ parallax /dev/ubda 2 1 read_only",
    b"0 @SZ@ parallax /dev/ubda 2 3 read_only snapshot_seq 1",
    b"0 @SZ@ parallax /dev/ubda 2 7 read_only cache_mb 4 low_water 64 no_space_timeout 5",
    b"0 @SZ@ parallax /dev/ubda 2 4 READ_ONLY host_id 3 error_if_no_space",
    b"0 @SZ@ parallax /dev/ubda 1 4 host_id 1 lock_gen @LG@",
    b"0 @SZ@ parallax /dev/ubda 1 7 host_id 1 lock_gen @LG@ error_if_no_space low_water 10",
    b"0 @SZ@ parallax /dev/ubda 1 2 cache_mb 1",
    b"0 @SZ@ parallax /dev/ubda 1",
    b"0 8 parallax /dev/ubda 1 2 no_space_timeout 0",
    b"0 8 parallax /dev/ubda 4 1 read_only",
    b"0 @SZ@ parallax 98:0 2 1 read_only",
    b"0 @SZ@ parallax /dev/ubdb 1 1 read_only",
]
MESSAGE_BASES = [
    b"snapshot",
    b"snapshot fz-label",
    b"snapshot a.b_c-D9",
    b"add_extent @E@",
    b"add_extent @E@ @EG@",
    b"add_extent @M@ @MG@",
    b"release_extent @E@",
    b"release_extent @M@",
    b"extents",
    b"lockd connected",
    b"lockd unreachable",
    b"gc_begin 5",
    b"gc_end 5",
    b"gc_reclaim 5 @E@ @EG@ 0 00ff",
    b"gc_reclaim 5 @M@ @MG@ 8 ff00ff",
]
GC_BASES = [
    b"gc_reclaim @GE@ @E@ @EG@ 0 00",
    b"gc_reclaim @GE@ @M@ @MG@ 8 0000",
    b"gc_reclaim @GE@ @E@ @EG@ 1016 00",
    b"gc_reclaim @GE@ @M@ @MG@ 512 " + b"00" * 64,
]

KEYWORDS = [b"read_only", b"error_if_no_space", b"cache_mb", b"host_id",
            b"no_space_timeout", b"low_water", b"lock_gen", b"snapshot_seq",
            b"snapshot", b"add_extent", b"release_extent", b"extents",
            b"lockd", b"gc_begin", b"gc_end", b"gc_reclaim", b"gc_",
            b"parallax", b"/dev/ubda", b"/dev/ubdb", b"/dev/ubdc", b"98:0",
            b"98:16", b"0:0", b"/dev/null", b"/dev/mapper/control",
            b"/dev/mapper/fm", b"@E@", b"@EG@", b"@M@", b"@MG@", b"@LG@",
            b"@SZ@", b"connected", b"unreachable"]


def special_number(r):
    return r.choice([
        b"0", b"1", b"-1", b"-0", b"+1", b"2", b"3", b"4", b"7", b"8", b"13",
        b"14", b"255", b"256", b"1023", b"1024", b"1025", b"4095", b"4096",
        b"32768", b"65535", b"86400", b"86401", b"1048576", b"1048577",
        b"2147483647", b"2147483648", b"4294967295", b"4294967296",
        b"9223372036854775807", b"9223372036854775808",
        str(U64 - 1).encode(), str(U64).encode(), str(U64 + 1).encode(),
        str(U64 * 2 + 2).encode(), b"1" * r.randint(20, 80),
        b"0x10", b"0X1", b"010", b"08", b"1e3", b"1.5", b"1,2", b"1_000",
        b"0" * r.randint(2, 40) + b"1", b"1k", b"1M",
        str(r.randint(0, 2 ** 16)).encode(), str(r.getrandbits(64)).encode(),
    ])


def junk(r):
    kind = r.randint(0, 9)
    if kind == 0:
        return b"A" * r.choice([15, 16, 31, 32, 33, 63, 64, 65, 127, 128, 255, 256, 4095, 4096])
    if kind == 1:
        return bytes(r.randint(0x80, 0xff) for _ in range(r.randint(1, 12)))
    if kind == 2:
        # Control bytes other than newline and NUL; some are whitespace
        # to the kernel but not to the shell.
        return bytes(r.choice([1, 7, 8, 9, 11, 12, 13, 27, 127]) for _ in range(r.randint(1, 4)))
    if kind == 3:
        return r.choice([b"\\", b"\\ ", b"a\\ b", b"\\\\", b"\\n", b"%s%n", b"%llu",
                         b"'", b'"', b"$(x)", b"`", b";", b"*", b"~", b"-", b"--"])
    if kind == 4:
        return bytes(r.randint(0x21, 0x7e) for _ in range(r.randint(1, 20)))
    if kind == 5:
        return r.choice(KEYWORDS).upper()
    if kind == 6:
        w = r.choice(KEYWORDS)
        return w[:r.randint(0, len(w))]
    if kind == 7:
        return b"x" * r.randint(1000, 6000)
    if kind == 8:
        return bytes(r.choice(b"abcdefghijklmnopqrstuvwxyz_") for _ in range(r.randint(1, 20)))
    return bytes(r.choice(b"0123456789abcdef") for _ in range(r.randint(1, 40)))


def any_token(r):
    c = r.random()
    if c < 0.35:
        return special_number(r)
    if c < 0.65:
        return r.choice(KEYWORDS)
    return junk(r)


def mutate_token(r, tok):
    c = r.randint(0, 7)
    if c <= 2:
        return special_number(r)
    if c == 3:
        return junk(r)
    if c == 4 and tok:
        i = r.randrange(len(tok))
        return tok[:i] + bytes([r.randint(1, 255)]) + tok[i + 1:]
    if c == 5:
        return tok + r.choice([b"x", b"0", b"\xff", b"\\", b"-", b"9" * 20])
    if c == 6:
        return tok.upper() if r.random() < 0.5 else tok.swapcase()
    return r.choice([b"", b"-", b"+", b"0"]) + tok


def mutate(r, toks, first):
    """Apply 1..4 mutations to toks[first:] (the target name stays)."""
    toks = list(toks)
    for _ in range(r.randint(1, 4)):
        n = len(toks)
        op = r.randint(0, 7)
        i = r.randrange(first, n) if n > first else first
        if op == 0 and n > first:
            del toks[i]
        elif op == 1 and n > first:
            toks.insert(i, toks[i])
        elif op == 2 and n > first + 1:
            j = r.randrange(first, n)
            toks[i], toks[j] = toks[j], toks[i]
        elif op == 3:
            toks.insert(r.randint(first, n), any_token(r))
        elif op in (4, 5) and n > first:
            toks[i] = mutate_token(r, toks[i])
        elif op == 6:
            toks = toks[:r.randint(first, n)]
        else:
            toks += [any_token(r) for _ in range(r.randint(1, 6))]
    return toks


def fix_count(toks):
    """Make the optional-argument count match, so options get parsed."""
    if len(toks) > 6 and toks[5].isdigit():
        toks[5] = str(len(toks) - 6).encode()
    return toks


def table(r):
    c = r.random()
    if c < 0.75:
        toks = r.choice(TABLE_BASES).split(b" ")
        first = 3 if r.random() < 0.9 else 0
        toks = mutate(r, toks, first)
        if r.random() < 0.3:
            toks = fix_count(toks)
        if first == 0 and (len(toks) < 3 or toks[2] != b"parallax"):
            toks = [b"0", b"@SZ@", b"parallax"] + toks[3:]
    else:
        toks = [r.choice([b"0", b"0", b"8", special_number(r)]),
                r.choice([b"@SZ@", b"8", b"1", special_number(r)]), b"parallax"]
        toks += [any_token(r) for _ in range(r.randint(0, 12))]
    return join(r, toks)


def message(r, bases):
    c = r.random()
    if c < 0.15:
        return r.choice(bases)          # valid: the success paths too
    if c < 0.8:
        toks = mutate(r, r.choice(bases).split(b" "), 0)
    else:
        toks = [r.choice(KEYWORDS)] + [any_token(r) for _ in range(r.randint(0, 7))]
    return join(r, toks)


def gcreclaim(r):
    if r.random() < 0.25:
        return r.choice(GC_BASES)       # valid: must answer 0
    toks = r.choice(GC_BASES).split(b" ")
    for _ in range(r.randint(1, 3)):
        i = r.randint(1, 4)
        c = r.random()
        if c < 0.7:
            toks[i] = mutate_token(r, toks[i])
        elif c < 0.85:
            toks[i] = r.choice([b"@GE@", b"@E@", b"@EG@", b"@M@", b"@MG@"])
        else:
            toks[i] = str(8 * r.randint(0, 1100)).encode()
    # The hex names no block: any length, but only zeros.
    toks[5] = b"0" * r.choice([0, 1, 2, 3, 4, 16, 2046, 2048, 2050, r.randint(1, 3000)])
    if r.random() < 0.1:
        toks = toks[:r.randint(1, 6)] if r.random() < 0.5 else toks + [b"00"]
    return join(r, toks)


def join(r, toks):
    sep = b" " if r.random() < 0.9 else r.choice([b"  ", b"\t", b" \t "])
    line = sep.join(toks)
    if r.random() < 0.05:
        line = b" " + line + b" "
    return line.replace(b"\n", b"").replace(b"\0", b"")


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("tables", "messages", "gcreclaim"):
        sys.stderr.write(__doc__)
        sys.exit(2)
    kind, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    r = random.Random("%s-%d" % (kind, seed))
    out = sys.stdout.buffer
    if kind == "tables":
        lines = REGRESS_TABLES + [table(r) for _ in range(count)]
    elif kind == "messages":
        lines = REGRESS_MESSAGES + [message(r, MESSAGE_BASES) for _ in range(count)]
    else:
        lines = REGRESS_GC + [gcreclaim(r) for _ in range(count)]
    for line in lines:
        if not line.strip():
            line = b"-"
        out.write(line + b"\n")


if __name__ == "__main__":
    main()
