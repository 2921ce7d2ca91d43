#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Check parallax df against a model of copy-on-write (helper of df.sh).

  dfmodel.py PARALLAX DIR

Builds a store in DIR with create, import of images with holes, snapshot,
clone, writes to the clone, snapshot delete and VDI delete, and after each
step compares "parallax df --json" with what a small model predicts.  The
model knows nothing of the tool's code: it numbers every block the tool
must allocate (a VDI's root; per write, a new leaf node where the leaf is
missing or shared read-only, a new data block where the block is unmapped
or shared read-only; a snapshot's new live root; a clone's root) and
derives reachability, exclusive and shared sets from the root set.  Height
2 trees (64 MiB VDIs): a root and leaves of 512 data pointers.

Prints "ok - what" / "not ok - what" lines; df.sh numbers them.
"""
import itertools
import json
import os
import random
import re
import subprocess
import sys

BS = 4096
PTRS = 512

ids = itertools.count(1)
allocated = {"d": set(), "m": set()}


def new(kind):
    b = (kind, next(ids))
    allocated[kind].add(b)
    return b


class Snap:
    """A frozen tree: root, leaves {li: id}, data {vb: id}."""

    def __init__(self, tree):
        self.root = tree.root
        self.leaves = {li: v[0] for li, v in tree.leaves.items()}
        self.data = {vb: v[0] for vb, v in tree.data.items()}

    def ids(self):
        return {self.root} | set(self.leaves.values()) | \
            set(self.data.values())


class Tree:
    """A live tree: root, leaves {li: [id, owned]}, data {vb: [id, owned]}.

    Created empty, or as a clone of a Snap: a new root, everything else
    shared read-only."""

    def __init__(self, snap=None):
        self.root = new("m")
        self.leaves = {}
        self.data = {}
        self.snaps = []        # non-deleted snapshots
        if snap:
            self.leaves = {li: [i, False] for li, i in snap.leaves.items()}
            self.data = {vb: [i, False] for vb, i in snap.data.items()}

    def ids(self):
        return {self.root} | {v[0] for v in self.leaves.values()} | \
            {v[0] for v in self.data.values()}

    def write(self, vb):
        li = vb // PTRS
        if li not in self.leaves or not self.leaves[li][1]:
            self.leaves[li] = [new("m"), True]
        if vb not in self.data or not self.data[vb][1]:
            self.data[vb] = [new("d"), True]

    def freeze(self):
        """Snapshot: the old tree is frozen, the live one gets a new root."""
        frozen = Snap(self)
        self.root = new("m")
        for v in itertools.chain(self.leaves.values(), self.data.values()):
            v[1] = False
        return frozen


def run(p, *args, check=True):
    r = subprocess.run([p] + list(args), capture_output=True, text=True)
    if check and r.returncode:
        sys.exit("Bail out! parallax %s: %s" % (" ".join(args), r.stderr))
    return r


def blocks_of(path):
    with open(path, "rb") as f:
        data = f.read()
    return [data[i:i + BS] for i in range(0, len(data), BS)]


def do_import(p, store, tree, name, path):
    """Import writes every non-zero block and every block mapped now."""
    run(p, "import", store, name, path)
    zero = bytes(BS)
    for vb, blk in enumerate(blocks_of(path)):
        if blk.rstrip(b"\0") or vb in tree.data:
            assert len(blk) == BS or blk != zero
            tree.write(vb)


def make_image(path, nblocks, rng, zero_leaves, hole_frac):
    out = bytearray()
    for vb in range(nblocks):
        if vb // PTRS in zero_leaves or rng.random() < hole_frac:
            out += bytes(BS)
        else:
            out += rng.randbytes(BS - 8) + b"dfmodel!"
    with open(path, "wb") as f:
        f.write(out)


def expected(vdis, log_blocks):
    reach = {}
    for name, t in vdis.items():
        s = set(t.ids())
        for fz in t.snaps:
            s |= fz.ids()
        reach[name] = s
    everything = set().union(*reach.values()) if reach else set()
    exp = {"types": {}, "vdis": {}}
    for kind, tname in (("d", "data"), ("m", "metadata")):
        used = len(allocated[kind])
        reachable = len({b for b in everything if b[0] == kind})
        if kind == "m":
            used += log_blocks
            reachable += log_blocks
        exp["types"][tname] = {"used": used, "reclaimable": used - reachable}
    for name, t in vdis.items():
        others = set()
        for o, s in reach.items():
            if o != name:
                others |= s
        mine = reach[name]
        live = t.ids()
        e = {"snapshots": len(t.snaps)}
        for kind, k in (("d", "data"), ("m", "meta")):
            e[k + "_mapped"] = len([b for b in live if b[0] == kind])
            e[k + "_exclusive"] = len([b for b in mine - others
                                       if b[0] == kind])
            e[k + "_shared"] = len([b for b in mine & others if b[0] == kind])
        exp["vdis"][name] = e
    return exp


def human_agrees(p, store, js):
    """The human table shows the same block counts as --json."""
    out = run(p, "df", store).stdout
    for tname, t in js["types"].items():
        m = re.search(r"^%s +(\d+) +(\d+) \([^)]*\) +(\d+) \([^)]*\) +"
                      r"(\d+) \([^)]*\) +(\d+) \(" % tname, out, re.M)
        if not m or [int(x) for x in m.groups()] != \
                [t["extents"], t["blocks"], t["used"], t["free"],
                 t["reclaimable"]]:
            return "type %s: %s" % (tname, m.group(0) if m else "no row")
    for v in js["vdis"]:
        m = re.search(r"^ +%d +%s +\S+ \S+ +(\d+)" % (v["id"], v["name"]) +
                      r" +(\d+)" * 6, out, re.M)
        want = [v[k] for k in ("snapshots", "data_mapped", "meta_mapped",
                               "data_exclusive", "meta_exclusive",
                               "data_shared", "meta_shared")]
        if not m or [int(x) for x in m.groups()] != want:
            return "VDI %s: %s" % (v["name"], m.group(0) if m else "no row")
    return None


def compare(p, store, vdis, log_blocks, step):
    js = json.loads(run(p, "df", store, "--json").stdout)
    exp = expected(vdis, log_blocks)
    bad = []
    for tname, e in exp["types"].items():
        for k, want in e.items():
            got = js["types"][tname][k]
            if got != want:
                bad.append("%s.%s %d != %d" % (tname, k, got, want))
    got_vdis = {v["name"]: v for v in js["vdis"]}
    if set(got_vdis) != set(exp["vdis"]):
        bad.append("VDIs %s != %s" % (sorted(got_vdis), sorted(exp["vdis"])))
    for name, e in exp["vdis"].items():
        for k, want in e.items():
            got = got_vdis.get(name, {}).get(k)
            if got != want:
                bad.append("%s.%s %s != %d" % (name, k, got, want))
    if js["log_blocks"] != log_blocks:
        bad.append("log_blocks %d != %d" % (js["log_blocks"], log_blocks))
    summary = ", ".join("%s %d/%d excl, %d/%d shared" % (
        n, e["data_exclusive"], e["meta_exclusive"],
        e["data_shared"], e["meta_shared"]) for n, e in exp["vdis"].items())
    if bad:
        print("not ok - df after %s: %s" % (step, "; ".join(bad)))
    else:
        print("ok - df after %s matches the model (data used %d, "
              "reclaimable %d/%d; %s)" % (
                  step, exp["types"]["data"]["used"],
                  exp["types"]["data"]["reclaimable"],
                  exp["types"]["metadata"]["reclaimable"], summary))
    # Independent walker: check's garbage and reachable data blocks.
    ck = json.loads(run(p, "check", store, "--json", check=False).stdout)
    recl = sum(t["reclaimable"] for t in js["types"].values())
    reach_data = js["types"]["data"]["used"] - \
        js["types"]["data"]["reclaimable"]
    if ck["clean"] and ck["garbage"] == recl and \
            ck["data_blocks"] == reach_data:
        print("ok - df after %s agrees with check (garbage %d, data %d)" %
              (step, recl, reach_data))
    else:
        print("not ok - df after %s vs check: garbage %d/%d data %d/%d" %
              (step, recl, ck["garbage"], reach_data, ck["data_blocks"]))
    why = human_agrees(p, store, js)
    print(("not ok - human df after %s disagrees with --json: %s" %
           (step, why)) if why else
          "ok - human df after %s shows the --json figures" % step)
    return js


def main():
    p, d = sys.argv[1], sys.argv[2]
    rng = random.Random(20080401)
    store = os.path.join(d, "df.img")
    with open(store, "wb") as f:
        f.truncate(256 << 20)
    run(p, "format", store, "--extent-size", "4M")
    vdis = {}
    logs = 0

    run(p, "create", store, "a", "--size", "64M")
    vdis["a"] = Tree()
    compare(p, store, vdis, logs, "create")

    # 16 MiB with leaves 2 and 5 all zero and 20% scattered holes.
    img1 = os.path.join(d, "img1")
    make_image(img1, 4096, rng, {2, 5}, 0.2)
    do_import(p, store, vdis["a"], "a", img1)
    compare(p, store, vdis, logs, "import")

    run(p, "snapshot", store, "a", "--label", "s1")
    vdis["a"].snaps.append(vdis["a"].freeze())
    logs = 1
    compare(p, store, vdis, logs, "snapshot")

    # 12 MiB: new data in the empty leaf 2, zeros elsewhere (rewritten
    # where mapped, skipped where not).
    img2 = os.path.join(d, "img2")
    make_image(img2, 3072, rng, {0, 1, 3, 4, 5}, 0.3)
    do_import(p, store, vdis["a"], "a", img2)
    compare(p, store, vdis, logs, "overwrite after snapshot")

    run(p, "create", store, "b", "--from", "a@s1")
    vdis["b"] = Tree(vdis["a"].snaps[0])
    compare(p, store, vdis, logs, "clone")

    # 6 MiB into the clone: leaves 0..2 (all of 0 and 1 rewritten, where
    # mapped; leaf 2 gets data, which the clone never had).
    img3 = os.path.join(d, "img3")
    make_image(img3, 1536, rng, set(), 0.5)
    do_import(p, store, vdis["b"], "b", img3)
    compare(p, store, vdis, logs, "writes to the clone")

    run(p, "delete", store, "a@s1")
    vdis["a"].snaps = []
    compare(p, store, vdis, logs, "snapshot delete")

    run(p, "delete", store, "b")
    del vdis["b"]
    compare(p, store, vdis, logs, "clone delete")


if __name__ == "__main__":
    main()
