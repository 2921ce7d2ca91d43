// SPDX-License-Identifier: GPL-2.0
/* Manual text of parallax and each of its subcommands. */
#include "cli.h"

#define EXIT_TEXT \
"EXIT STATUS\n" \
"    0  success\n" \
"    1  the store is damaged, not a blockstore, or the object named does\n" \
"       not exist; nothing was written unless the message says otherwise\n" \
"    2  bad command line (unknown option, malformed number or name)\n"

static const char help_main[] =
"NAME\n"
"    parallax - administer a dm-parallax blockstore\n\n"
"SYNOPSIS\n"
"    parallax COMMAND DEV [ARGS...] [OPTIONS]\n"
"    parallax COMMAND --help\n\n"
"DESCRIPTION\n"
"    A blockstore is a file or block device (DEV) formatted into extents\n"
"    that holds virtual disk images (VDIs).  Each VDI is a radix tree of\n"
"    4 KiB blocks; snapshots are immutable copies of that tree recorded\n"
"    in the VDI's snapshot log, and clones are new VDIs sharing a\n"
"    snapshot's blocks copy-on-write (Parallax, EuroSys 2008).\n\n"
"    On a store without a lock manager the tool works offline: no host\n"
"    may have the store in use for writing while it modifies it.  It\n"
"    allocates only from extents that no host holds, and refuses VDIs\n"
"    held by a host.\n\n"
"    CLUSTER MODE.  When the superblock names a lock manager (written by\n"
"    parallax-lockd when it starts), the lock manager is the only writer\n"
"    of the catalogue and superblock, and create, delete, snapshot,\n"
"    label and import behave as one more host: they connect to it as\n"
"    this host (id from $PARALLAX_HOST_ID, else /etc/parallax/host-id,\n"
"    else 1), take the VDI registry lock (create, clone, delete) and the\n"
"    lock of the VDI they modify, claim extents to allocate from, re-read\n"
"    the store, do the work, and release everything, also on failure.  A\n"
"    VDI held by another host, or attached on this one, is refused.  If\n"
"    the lock manager is unreachable they fail and write nothing; there\n"
"    is no way around it on purpose.  An administrator who lost the lock\n"
"    manager for good stops every host using the store, clears the locks\n"
"    with 'parallax unlock --offline' and starts parallax-lockd again,\n"
"    on any host: it writes its new address into the superblock.  attach and\n"
"    detach go through this host's parallaxd; locks and unlock show and\n"
"    break the lock manager's locks.\n\n"
"    VDIs are named by id (digits) or name.  Snapshots are named\n"
"    VDI@SEQ, VDI@LABEL or by their label alone; the tool prints them as\n"
"    ID@SEQ.  Names and labels use [A-Za-z0-9._-] and are never all\n"
"    digits; names are unique among live VDIs, labels store-wide.\n\n"
"    Sizes accept the binary suffixes K, M, G and T (also KiB..TiB).\n\n"
EXIT_TEXT "\n";

static const char help_format[] =
"NAME\n"
"    parallax format - create an empty blockstore\n\n"
"SYNOPSIS\n"
"    parallax format DEV [--extent-size SIZE] [--max-vdis N] [--force]\n\n"
"DESCRIPTION\n"
"    Lays out a new blockstore over the whole of DEV: superblock,\n"
"    extent catalogue and VDI registry in the system extents, and an\n"
"    allocation bitmap at the start of every other extent.  The\n"
"    superblock is written last, so an interrupted format leaves no\n"
"    blockstore behind.  The device must hold the system area plus at\n"
"    least two extents.\n\n"
"OPTIONS\n"
"    --extent-size SIZE  extent size, a power of two from 4M to 64G\n"
"                        (default 1G)\n"
"    --max-vdis N        VDI registry slots (default 1024, max 1048576)\n"
"    --force             overwrite an existing blockstore\n\n"
EXIT_TEXT "\n"
"EXAMPLES\n"
"    truncate -s 1G store.img\n"
"    parallax format store.img --extent-size 4M\n";

static const char help_create[] =
"NAME\n"
"    parallax create - create a VDI, empty or as a clone of a snapshot\n\n"
"SYNOPSIS\n"
"    parallax create DEV NAME --size SIZE\n"
"    parallax create DEV NAME --from SNAPSHOT\n\n"
"DESCRIPTION\n"
"    Creates a VDI and prints its id.  With --size the VDI is empty\n"
"    (reads as zeros); SIZE must be a multiple of 4 KiB and at most\n"
"    256 TiB.  With --from the new VDI starts as a copy of SNAPSHOT and\n"
"    has its size; it costs one radix root block, every other block is\n"
"    shared read-only until written.\n\n"
"OPTIONS\n"
"    --size SIZE         size of an empty VDI\n"
"    --from SNAPSHOT     clone this snapshot (VDI@SEQ, VDI@LABEL, LABEL)\n\n"
EXIT_TEXT "\n"
"EXAMPLES\n"
"    parallax create store.img base --size 10G\n"
"    parallax create store.img web1 --from base@golden\n";

static const char help_delete[] =
"NAME\n"
"    parallax delete - delete a VDI or a snapshot\n\n"
"SYNOPSIS\n"
"    parallax delete DEV VDI|SNAPSHOT\n\n"
"DESCRIPTION\n"
"    Marks a VDI, or one snapshot record, deleted.  Blocks are only\n"
"    reclaimed by the garbage collector; clones of a deleted snapshot\n"
"    keep their data.  Deleting a snapshot rewrites its snapshot-log\n"
"    block in place, which is safe only offline.  An argument containing\n"
"    '@' is a snapshot; otherwise a VDI id or name, or else a label.\n\n"
EXIT_TEXT "\n"
"EXAMPLES\n"
"    parallax delete store.img web1\n"
"    parallax delete store.img 1@3\n";

static const char help_snapshot[] =
"NAME\n"
"    parallax snapshot - take a snapshot of a VDI\n\n"
"SYNOPSIS\n"
"    parallax snapshot DEV VDI [--label LABEL]\n\n"
"DESCRIPTION\n"
"    Freezes the VDI's current radix tree, appends it to the snapshot\n"
"    log and prints the snapshot's id ID@SEQ.  The VDI continues on a\n"
"    new root whose links are all read-only.\n\n"
"OPTIONS\n"
"    --label LABEL       give the snapshot a store-wide unique label\n\n"
EXIT_TEXT "\n"
"EXAMPLES\n"
"    parallax snapshot store.img base --label golden\n";

static const char help_label[] =
"NAME\n"
"    parallax label - set a snapshot's label\n\n"
"SYNOPSIS\n"
"    parallax label DEV SNAPSHOT LABEL\n\n"
"DESCRIPTION\n"
"    Sets (or replaces) a snapshot's label.  Labels are unique among the\n"
"    live snapshots of the store.  The snapshot-log block is rewritten in\n"
"    place, which is safe only offline.\n\n"
EXIT_TEXT "\n"
"EXAMPLES\n"
"    parallax label store.img 1@2 before-upgrade\n";

static const char help_list[] =
"NAME\n"
"    parallax list - list VDIs\n\n"
"SYNOPSIS\n"
"    parallax list DEV [--all] [--json]\n\n"
"DESCRIPTION\n"
"    One line per live VDI: id, name, size, number of snapshots, and the\n"
"    snapshot it was cloned from.\n\n"
"OPTIONS\n"
"    --all               include deleted VDIs\n"
"    --json              print a JSON array of objects instead\n\n"
EXIT_TEXT "\n"
"EXAMPLES\n"
"    parallax list store.img --json | jq '.[].name'\n";

static const char help_snaplog[] =
"NAME\n"
"    parallax snaplog - show a VDI's snapshot log\n\n"
"SYNOPSIS\n"
"    parallax snaplog DEV VDI [--json]\n\n"
"DESCRIPTION\n"
"    One line per snapshot, oldest first: id, time taken (UTC), label,\n"
"    state and radix root block.\n\n"
"OPTIONS\n"
"    --json              print a JSON array of objects instead\n\n"
EXIT_TEXT "\n"
"EXAMPLES\n"
"    parallax snaplog store.img base\n";

static const char help_tree[] =
"NAME\n"
"    parallax tree - show VDIs, their snapshots and clones as a tree\n\n"
"SYNOPSIS\n"
"    parallax tree DEV [--json | --dot]\n\n"
"DESCRIPTION\n"
"    Each VDI that is not a clone starts a tree; its snapshots hang\n"
"    under it, oldest first, and every clone hangs under the snapshot it\n"
"    was made from (thesis figure 3.4).  Deleted snapshots that still\n"
"    have clones are shown, marked deleted.\n\n"
"OPTIONS\n"
"    --json              nested JSON instead of text\n"
"    --dot               a Graphviz digraph instead of text\n\n"
EXIT_TEXT "\n"
"EXAMPLES\n"
"    parallax tree store.img --dot | dot -Tpng > tree.png\n";

static const char help_check[] =
"NAME\n"
"    parallax check - check a blockstore's consistency\n\n"
"SYNOPSIS\n"
"    parallax check DEV [--json]\n\n"
"DESCRIPTION\n"
"    Reads the whole store and prints every problem found, one line\n"
"    each, naming the block at fault: checksums and fields of the\n"
"    superblock, catalogue, bitmaps, VDI records and snapshot logs;\n"
"    consecutive snapshot seqs; every radix pointer in range, in an\n"
"    extent of the right type and outside the bitmaps; cycles; blocks\n"
"    writable from a live VDI but linked from elsewhere too; reachable\n"
"    blocks not marked allocated; clone parents that do not resolve.\n"
"    Allocated blocks that nothing reaches are garbage for the\n"
"    collector and are only counted.  Nothing is written.\n\n"
"OPTIONS\n"
"    --json              print {\"clean\":..,\"problems\":[..],..}\n\n"
"EXIT STATUS\n"
"    0  the store is clean\n"
"    1  problems were found, or the store could not be read\n"
"    2  bad command line\n\n"
"EXAMPLES\n"
"    parallax check store.img || echo damaged\n";

static const char help_import[] =
"NAME\n"
"    parallax import - copy a raw disk image into a VDI\n\n"
"SYNOPSIS\n"
"    parallax import DEV VDI FILE\n\n"
"DESCRIPTION\n"
"    Writes FILE (or standard input for '-') into the VDI from offset 0,\n"
"    copying on write wherever blocks are shared with snapshots.\n"
"    All-zero 4 KiB blocks that are sparse in the VDI are skipped.  The\n"
"    image may be shorter than the VDI; the rest is left unchanged.\n\n"
EXIT_TEXT "\n"
"EXAMPLES\n"
"    parallax import store.img base disk.raw\n";

static const char help_export[] =
"NAME\n"
"    parallax export - copy a VDI or snapshot out as a raw image\n\n"
"SYNOPSIS\n"
"    parallax export DEV VDI|SNAPSHOT FILE\n\n"
"DESCRIPTION\n"
"    Writes the VDI's current contents, or the snapshot's frozen\n"
"    contents, to FILE (created or truncated; '-' for standard output).\n"
"    Unmapped ranges are left as holes in a regular file.  An argument\n"
"    containing '@' is a snapshot; otherwise a VDI id or name, or else a\n"
"    snapshot label.\n\n"
EXIT_TEXT "\n"
"EXAMPLES\n"
"    parallax export store.img base@golden golden.raw\n";

static const char help_dump[] =
"NAME\n"
"    parallax dump - decode blockstore metadata\n\n"
"SYNOPSIS\n"
"    parallax dump DEV [BLOCK]\n\n"
"DESCRIPTION\n"
"    Without BLOCK: the superblock and a summary of the extent\n"
"    catalogue.  With BLOCK: that block, decoded by its magic number\n"
"    (superblock, catalogue, bitmap, VDI record, snapshot log) with the\n"
"    result of its checksum check; a block without magic is shown as a\n"
"    radix node, listing its non-zero pointers (ro = read-only link).\n\n"
EXIT_TEXT "\n"
"EXAMPLES\n"
"    parallax dump store.img\n"
"    parallax dump store.img 2049\n";

static const char help_attach[] =
"NAME\n"
"    parallax attach - present a VDI as a block device on this host\n\n"
"SYNOPSIS\n"
"    parallax attach DEV VDI [--name NAME] [--read-only | --wait-lock S]\n"
"    parallax attach DEV VDI [--name NAME] [--read-only] [--local]\n"
"                    [--host-id N] [--data-extents N] [--metadata-extents N]\n\n"
"DESCRIPTION\n"
"    Creates the device-mapper device NAME (default: the VDI's name)\n"
"    with the parallax target and prints its path.\n\n"
"    Store with a lock manager (cluster mode): the request goes to this\n"
"    host's parallaxd over its control socket\n"
"    $PARALLAX_RUN_DIR/parallaxd.sock (default /run/parallax), which\n"
"    locks the VDI and claims extents through the lock manager, keeps\n"
"    the lease alive and hands the device more extents as it fills.  If\n"
"    parallaxd is not running, attach fails and says so; it never\n"
"    claims anything itself then.  --host-id and the extent counts are\n"
"    parallaxd's business and are refused.\n\n"
"    Live migration (cluster mode): with --wait-lock S, a VDI that\n"
"    another host still holds read-write does not fail the attach:\n"
"    parallaxd makes the device at once, read-only and suspended, so\n"
"    that its I/O waits, and switches it to read-write when the other\n"
"    host detaches (within S seconds).  Otherwise the device is resumed\n"
"    read-only (writes fail) and parallaxd's status calls it stale.\n\n"
"    Store without a lock manager (single-host mode): records this\n"
"    host's claim on VDI and on fresh extents (1 data and 1 metadata\n"
"    extent unless told otherwise) in the blockstore's catalogue, creates\n"
"    the device through libdevmapper, and grants it the extents.  DEV\n"
"    must be a block device.  A VDI claimed by another host is refused.\n"
"    What was claimed is remembered in $PARALLAX_RUN_DIR/NAME (default\n"
"    /run/parallax), so that detach releases exactly that.\n\n"
"OPTIONS\n"
"    --name NAME        device name under /dev/mapper\n"
"    --read-only        attach without claiming or locking anything;\n"
"                       writes fail\n"
"    --local            insist on the single-host path: refused if the\n"
"                       store has a lock manager, whose claims those are\n"
"    --host-id N        this host's id (default: $PARALLAX_HOST_ID, else\n"
"                       /etc/parallax/host-id, else 1); single-host only\n"
"    --data-extents N   data extents to claim (1..63); single-host only\n"
"    --metadata-extents N\n"
"                       metadata extents to claim (1..63): radix nodes\n"
"                       and snapshot-log blocks, about 6 a snapshot;\n"
"                       single-host only\n"
"    --wait-lock S      if another host holds the VDI, wait up to S\n"
"                       seconds (1..3600) for it to hand the VDI over,\n"
"                       with the device already present but suspended;\n"
"                       cluster mode and read-write only\n\n"
"EXAMPLES\n"
"    parallax attach /dev/sdb web --data-extents 4\n"
"    dmsetup message web 0 snapshot nightly\n\n"
EXIT_TEXT;

static const char help_detach[] =
"NAME\n"
"    parallax detach - remove a device made by parallax attach\n\n"
"SYNOPSIS\n"
"    parallax detach NAME\n\n"
"DESCRIPTION\n"
"    Removes the device-mapper device NAME (which must not be open),\n"
"    then releases the VDI and the extents that attach claimed for it.\n"
"    A device that parallaxd made (its store has a lock manager, or no\n"
"    single-host state file $PARALLAX_RUN_DIR/NAME exists while\n"
"    parallaxd runs) is detached by parallaxd, which gives the locks\n"
"    back to the lock manager.\n\n"
EXIT_TEXT;

static const char help_locks[] =
"NAME\n"
"    parallax locks - show the lock manager's hosts and locks\n\n"
"SYNOPSIS\n"
"    parallax locks DEV [--json] [--lockd HOST:PORT] [--host-id N]\n\n"
"DESCRIPTION\n"
"    Connects to the store's lock manager (the address in its\n"
"    superblock, or --lockd) with the store's cluster key, as this host,\n"
"    and prints its status: one line per host (lease) and per lock held\n"
"    (registry, VDI, extent, bitmap), as parallax-lockd words them.\n\n"
"OPTIONS\n"
"    --json              one JSON object per line instead: \"kind\" is\n"
"                        the line's first word, \"id\" the word after it,\n"
"                        then KEY VALUE pairs and KEY=VALUE words\n"
"    --lockd HOST:PORT   ask this lock manager instead\n"
"    --host-id N         connect as host N (default as for attach)\n\n"
"EXIT STATUS\n"
"    0  printed\n"
"    1  no lock manager configured, or it is unreachable\n"
"    2  bad command line\n\n"
"EXAMPLES\n"
"    parallax locks /dev/sdb\n"
"    parallax locks store.img --json | jq 'select(.kind == \"vdi\")'\n";

static const char help_unlock[] =
"NAME\n"
"    parallax unlock - fence a host or break one lock\n\n"
"SYNOPSIS\n"
"    parallax unlock DEV (--host N | --vdi VDI | --extent E | --registry)\n"
"                    [--force] [--offline] [--lockd HOST:PORT] [--host-id N]\n\n"
"DESCRIPTION\n"
"    Asks the lock manager to break locks (its BREAK request): --host\n"
"    every lock of host N, otherwise the one lock named.\n\n"
"    Breaking a lock fences its holder: the lock manager clears the\n"
"    holder and bumps the lock's generation on disk.  Every grant the old\n"
"    holder has - the generation its device was created with, or was\n"
"    given an extent with - becomes stale: the kernel target refuses to\n"
"    create a device with a stale lock_gen, refuses add_extent with a\n"
"    stale generation, and drops an extent it finds fenced at its next\n"
"    reserve refill.  Use it on a host that died or is cut off; a live\n"
"    holder loses its locks and its writes start failing.\n\n"
"    Without --force the lock manager refuses while the holder's lease\n"
"    is live (it renews every few seconds): a dead host's lease runs out\n"
"    by itself.  --force fences even a live holder.\n\n"
"    --offline, for when the lock manager is gone: makes the same change\n"
"    (holder 0, generation bumped) directly on disk with no lock manager.\n"
"    It is refused if anything answers at the lock manager's address;\n"
"    no host may use the store meanwhile.  It also clears claims left by\n"
"    single-host attach on a host that died.\n\n"
"OPTIONS\n"
"    --host N            fence host N: all its VDIs, extents, the registry\n"
"    --vdi VDI           break the lock of VDI (id or name)\n"
"    --extent E          break the claim on extent E\n"
"    --registry          break the VDI registry lock\n"
"    --force             even if the holder's lease is live\n"
"    --offline           write the change to DEV, without a lock manager\n"
"    --lockd HOST:PORT   the lock manager, if not the superblock's\n"
"    --host-id N         connect as host N (default as for attach)\n\n"
"EXIT STATUS\n"
"    0  fenced, or (--offline) nothing was held\n"
"    1  refused (lease live, no such lock), lock manager unreachable, or\n"
"       with --offline a lock manager answers\n"
"    2  bad command line\n\n"
"EXAMPLES\n"
"    parallax unlock /dev/sdb --host 3\n"
"    parallax unlock /dev/sdb --vdi web --force\n"
"    parallax unlock store.img --host 3 --offline\n";

const struct cli_cmd cli_cmds[] = {
	{ "parallax", NULL, NULL, help_main },
	{ "format", cmd_format, "create an empty blockstore", help_format },
	{ "create", cmd_create, "create a VDI (empty or a clone)", help_create },
	{ "delete", cmd_delete, "delete a VDI or snapshot", help_delete },
	{ "snapshot", cmd_snapshot, "snapshot a VDI", help_snapshot },
	{ "label", cmd_label, "label a snapshot", help_label },
	{ "list", cmd_list, "list VDIs", help_list },
	{ "snaplog", cmd_snaplog, "show a VDI's snapshot log", help_snaplog },
	{ "tree", cmd_tree, "show VDIs, snapshots and clones as a tree",
	  help_tree },
	{ "check", cmd_check, "check consistency", help_check },
	{ "import", cmd_import, "copy a raw image into a VDI", help_import },
	{ "export", cmd_export, "copy a VDI or snapshot out as a raw image",
	  help_export },
	{ "dump", cmd_dump, "decode metadata blocks", help_dump },
	{ "attach", cmd_attach, "present a VDI as a block device", help_attach },
	{ "detach", cmd_detach, "remove a device made by attach", help_detach },
	{ "locks", cmd_locks, "show the lock manager's locks", help_locks },
	{ "unlock", cmd_unlock, "fence a host or break a lock", help_unlock },
	{ NULL, NULL, NULL, NULL },
};
