// SPDX-License-Identifier: GPL-2.0
/*
 * parallax tree: VDIs with their snapshots, and clones hanging under the
 * snapshot they were made from (thesis figure 3.4), as text, JSON or dot.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

enum tree_mode { TREE_TEXT, TREE_JSON, TREE_DOT };

struct tree {
	struct plx_store *s;
	enum tree_mode mode;
	bool *shown;			/* per slot: part of the tree */
	bool *printed;
	struct plx_snaplist *logs;	/* per slot; count 0 if unreadable */
};

static struct plx_vdi_record *rec(struct tree *t, u64 id)
{
	return &t->s->slots[id - 1].rec;
}

/* Is VDI @c a clone placed under snapshot @seq of @p (0 = directly)? */
static bool clone_of(struct tree *t, u64 c, u64 p, u64 seq)
{
	struct plx_vdi_record *v = rec(t, c);
	u64 ps = le64_to_cpu(v->parent_seq);

	if (!t->shown[c - 1] || le64_to_cpu(v->parent_vdi) != p)
		return false;
	if (seq)
		return ps == seq;
	return ps > t->logs[p - 1].count;
}

static bool has_clones(struct tree *t, u64 p, u64 seq)
{
	u64 c;

	for (c = 1; c <= t->s->geo.registry_slots; c++)
		if (clone_of(t, c, p, seq))
			return true;
	return false;
}

static bool snap_shown(struct tree *t, u64 id, struct plx_snap *sn)
{
	return !(le32_to_cpu(sn->rec.flags) & PLX_SNAP_DELETED) ||
	       has_clones(t, id, le64_to_cpu(sn->rec.seq));
}

static void print_vdi(struct tree *t, u64 id, const char *prefix,
		      const char *conn, bool last);

static void print_clones(struct tree *t, u64 p, u64 seq, const char *prefix)
{
	u64 c, n = 0, i = 0;

	/* Already printed only if the parent links form a cycle. */
	for (c = 1; c <= t->s->geo.registry_slots; c++)
		if (clone_of(t, c, p, seq) && !t->printed[c - 1])
			n++;
	for (c = 1; c <= t->s->geo.registry_slots; c++) {
		if (!clone_of(t, c, p, seq) || t->printed[c - 1])
			continue;
		i++;
		if (t->mode == TREE_JSON && i > 1)
			printf(",");
		if (t->mode == TREE_DOT)
			seq ? printf("  \"s%llu_%llu\" -> \"v%llu\";\n",
				     (unsigned long long)p,
				     (unsigned long long)seq,
				     (unsigned long long)c) :
			      printf("  \"v%llu\" -> \"v%llu\" [style=dashed];\n",
				     (unsigned long long)p,
				     (unsigned long long)c);
		print_vdi(t, c, prefix, i == n ? "`-- " : "|-- ", i == n);
	}
}

static void print_snap(struct tree *t, struct plx_snap *sn,
		       const char *prefix, const char *conn, bool last)
{
	u64 seq = le64_to_cpu(sn->rec.seq);
	char sid[48], when[32], label[PLX_LABEL_LEN + 1];
	bool del = le32_to_cpu(sn->rec.flags) & PLX_SNAP_DELETED;
	char np[512];

	cli_snap_id(sn, sid, sizeof(sid));
	cli_time(le64_to_cpu(sn->rec.timestamp_ns), when, sizeof(when));
	plx_copy_name(label, sn->rec.label, PLX_LABEL_LEN);
	switch (t->mode) {
	case TREE_TEXT:
		printf("%s%s%s%s%s %s%s\n", prefix, conn, sid,
		       label[0] ? " " : "", label, when,
		       del ? " [deleted]" : "");
		snprintf(np, sizeof(np), "%s%s", prefix, last ? "    " : "|   ");
		print_clones(t, sn->vdi, seq, np);
		break;
	case TREE_JSON:
		printf("{\"id\": \"%s\", \"seq\": %llu, \"label\": ", sid,
		       (unsigned long long)seq);
		if (label[0])
			plx_json_str(stdout, label);
		else
			printf("null");
		printf(", \"taken\": \"%s\", \"deleted\": %s, \"clones\": [",
		       when, del ? "true" : "false");
		print_clones(t, sn->vdi, seq, "");
		printf("]}");
		break;
	case TREE_DOT:
		printf("  \"s%llu_%llu\" [label=\"%s%s%s%s\", shape=ellipse];\n",
		       (unsigned long long)sn->vdi, (unsigned long long)seq,
		       sid, label[0] ? "\\n" : "", label,
		       del ? "\\n(deleted)" : "");
		print_clones(t, sn->vdi, seq, "");
		break;
	}
}

static void print_vdi(struct tree *t, u64 id, const char *prefix,
		      const char *conn, bool last)
{
	struct plx_vdi_record *v = rec(t, id);
	struct plx_snaplist *l = &t->logs[id - 1];
	char name[PLX_NAME_LEN + 1], hs[32], np[512], prev[64] = "";
	bool del = !plx_vdi_live(v), orphans;
	u64 i, n = 0, k = 0;

	if (t->printed[id - 1])
		return;
	t->printed[id - 1] = true;
	plx_copy_name(name, v->name, PLX_NAME_LEN);
	plx_human_size(le64_to_cpu(v->size), hs, sizeof(hs));
	orphans = has_clones(t, id, 0);
	for (i = 0; i < l->count; i++)
		if (snap_shown(t, id, &l->snaps[i]))
			n++;
	switch (t->mode) {
	case TREE_TEXT:
		printf("%s%sVDI %llu %s (%s)%s\n", prefix, conn,
		       (unsigned long long)id, name, hs,
		       del ? " [deleted]" : "");
		snprintf(np, sizeof(np), "%s%s", prefix,
			 !*conn ? "" : last ? "    " : "|   ");
		if (orphans)
			print_clones(t, id, 0, np);
		for (i = 0; i < l->count; i++) {
			if (!snap_shown(t, id, &l->snaps[i]))
				continue;
			k++;
			print_snap(t, &l->snaps[i], np,
				   k == n ? "`-- " : "|-- ", k == n);
		}
		break;
	case TREE_JSON:
		printf("{\"id\": %llu, \"name\": ", (unsigned long long)id);
		plx_json_str(stdout, name);
		printf(", \"size\": %llu, \"deleted\": %s, \"parent\": ",
		       (unsigned long long)le64_to_cpu(v->size),
		       del ? "true" : "false");
		if (v->parent_vdi)
			printf("\"%llu@%llu\"",
			       (unsigned long long)le64_to_cpu(v->parent_vdi),
			       (unsigned long long)le64_to_cpu(v->parent_seq));
		else
			printf("null");
		printf(", \"snapshots\": [");
		for (i = 0; i < l->count; i++) {
			if (!snap_shown(t, id, &l->snaps[i]))
				continue;
			if (k++)
				printf(", ");
			print_snap(t, &l->snaps[i], "", "", false);
		}
		printf("], \"clones\": [");
		print_clones(t, id, 0, "");
		printf("]}");
		break;
	case TREE_DOT:
		printf("  \"v%llu\" [label=\"VDI %llu\\n%s\\n%s%s\", shape=box];\n",
		       (unsigned long long)id, (unsigned long long)id, name, hs,
		       del ? "\\n(deleted)" : "");
		print_clones(t, id, 0, "");
		/* Snapshots chain from the VDI, oldest first. */
		snprintf(prev, sizeof(prev), "v%llu", (unsigned long long)id);
		for (i = 0; i < l->count; i++) {
			if (!snap_shown(t, id, &l->snaps[i]))
				continue;
			print_snap(t, &l->snaps[i], "", "", false);
			printf("  \"%s\" -> \"s%llu_%llu\";\n", prev,
			       (unsigned long long)id,
			       (unsigned long long)le64_to_cpu(l->snaps[i].rec.seq));
		}
		break;
	}
}

/* Live VDIs, and the deleted ancestors that live clones hang from. */
static void mark_shown(struct tree *t)
{
	u64 slots = t->s->geo.registry_slots, id, p;
	bool changed = true;

	for (id = 1; id <= slots; id++)
		t->shown[id - 1] = t->s->slots[id - 1].state == PLX_SLOT_VDI &&
				   plx_vdi_live(rec(t, id));
	while (changed) {
		changed = false;
		for (id = 1; id <= slots; id++) {
			if (!t->shown[id - 1])
				continue;
			p = le64_to_cpu(rec(t, id)->parent_vdi);
			if (p && t->s->slots[p - 1].state == PLX_SLOT_VDI &&
			    !t->shown[p - 1]) {
				t->shown[p - 1] = true;
				changed = true;
			}
		}
	}
}

static bool is_top(struct tree *t, u64 id)
{
	u64 p = le64_to_cpu(rec(t, id)->parent_vdi);

	return !p || !t->shown[p - 1];
}

int cmd_tree(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "dot", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct tree t = { .mode = TREE_TEXT };
	u64 slots, id, pass, n = 0;
	int c, ret = EXIT_OK;

	while ((c = cli_getopt(argc, argv, ":h", opts)) != -1) {
		switch (c) {
		case 'j':
		case 'd':
			if (t.mode != TREE_TEXT)
				return cli_err(EXIT_USAGE,
					       "--json and --dot exclude each other");
			t.mode = c == 'j' ? TREE_JSON : TREE_DOT;
			break;
		case 'h':
			return cli_help(cli_cmd);
		default:
			return EXIT_USAGE;
		}
	}
	if (cli_nargs(argc, argv, 1, 1))
		return EXIT_USAGE;
	t.s = cli_open(argv[optind], false);
	if (!t.s)
		return EXIT_STORE;
	slots = t.s->geo.registry_slots;
	t.shown = calloc(slots, sizeof(bool));
	t.printed = calloc(slots, sizeof(bool));
	t.logs = calloc(slots, sizeof(*t.logs));
	if (!t.shown || !t.printed || !t.logs) {
		ret = cli_err(EXIT_STORE, "out of memory");
		goto out;
	}
	mark_shown(&t);
	for (id = 1; id <= slots; id++) {
		if (!t.shown[id - 1])
			continue;
		if (plx_snaplog_load(t.s, id, &t.logs[id - 1]))
			ret = cli_liberr();
	}
	if (t.mode == TREE_JSON)
		printf("[");
	else if (t.mode == TREE_DOT)
		printf("digraph parallax {\n  rankdir=LR;\n");
	/* Pass 1: proper roots; pass 2: anything left (a parent cycle). */
	for (pass = 0; pass < 2; pass++) {
		for (id = 1; id <= slots; id++) {
			if (!t.shown[id - 1] || t.printed[id - 1] ||
			    (!pass && !is_top(&t, id)))
				continue;
			if (t.mode == TREE_JSON && n)
				printf(",");
			if (t.mode == TREE_JSON)
				printf("\n ");
			print_vdi(&t, id, "", "", true);
			n++;
		}
	}
	if (t.mode == TREE_JSON)
		printf("%s]\n", n ? "\n" : "");
	else if (t.mode == TREE_DOT)
		printf("}\n");
out:
	if (t.logs)
		for (id = 1; id <= slots; id++)
			plx_snaplist_free(&t.logs[id - 1]);
	free(t.logs);
	free(t.shown);
	free(t.printed);
	plx_close(t.s);
	return ret;
}
