/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libdevmapper helpers shared by the parallax admin tool and parallaxd:
 * create, remove, message and query devices whose table is one parallax
 * target, and wait for dm events.
 *
 * Functions returning int return 0 on success and -1 on failure with
 * errno set (from the kernel's answer when there was one) and
 * plx_errmsg() describing the failure.  libdevmapper itself also logs
 * ioctl failures to stderr.
 */
#ifndef PLX_DMDEV_H
#define PLX_DMDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libparallax.h"

/* Device names: non-empty, no '/' or whitespace/control, < DM_NAME_LEN. */
bool plx_dm_name_ok(const char *name);

/*
 * Wait for udev after create/remove (the default).  Guests without udev
 * (UML tests) and daemons that must not block on a missing udev switch it
 * off; libdevmapper then makes the /dev/mapper nodes itself.
 */
void plx_dm_set_udev_sync(bool sync);

bool plx_dm_exists(const char *name);
/* Was the device's live table loaded read-only (dmsetup --readonly)? */
bool plx_dm_read_only(const char *name);
/*
 * One parallax target of @sectors sectors, table parameters @params,
 * loaded read-only if @read_only.  The device's dm uuid is
 * PLX_DM_UUID_PREFIX, the store's UUID in hex, the VDI id and the name
 * (cut to fit), so that udev rules, lsblk and blkid can tell parallax
 * devices apart, as LVM's "LVM-" prefix does for its volumes.
 */
#define PLX_DM_UUID_PREFIX	"PARALLAX-"
int plx_dm_create(const char *name, u64 sectors, const char *params,
		  bool read_only, const u8 store_uuid[16], u64 vdi);
/*
 * Suspend without flushing (DM_NOFLUSH_FLAG, no lockfs): bios submitted
 * meanwhile wait inside device-mapper until the next resume, which hands
 * them to the live table then (the reloaded one if there was a reload).
 */
int plx_dm_suspend_noflush(const char *name);
/* Load @params as the inactive table (read-write); resume swaps it in. */
int plx_dm_reload(const char *name, u64 sectors, const char *params);
int plx_dm_resume(const char *name);
/* Is the device suspended?  false if it does not exist. */
bool plx_dm_suspended(const char *name);
/* Remove; the kernel flushes the target when it is suspended first. */
int plx_dm_remove(const char *name);
/*
 * Send target message @msg to sector 0; the target's answer (possibly
 * empty) goes to @result when it is not NULL.
 */
int plx_dm_message(const char *name, const char *msg, char *result,
		   size_t len);
/* The parameters of the (single) target's status or table line. */
int plx_dm_status(const char *name, char *buf, size_t len);
int plx_dm_table(const char *name, char *buf, size_t len);
/* Target type name and length (sectors) of the device's first target. */
int plx_dm_target(const char *name, char *type, size_t len, u64 *sectors);

/*
 * Names of every device whose first target is "parallax": a malloc'd
 * array of malloc'd strings (free with plx_dm_names_free).
 */
int plx_dm_list_parallax(char ***names, size_t *nr);
void plx_dm_names_free(char **names, size_t nr);

/* The fields of a parallax status line (Documentation/dm-parallax.rst). */
struct plx_dm_status {
	char mode[32];			/* ok, out_of_space, read_only, failed */
	u64 data_alloc, meta_alloc;
	u64 data_free, meta_free;
	u64 extents;
	u64 snapshots;
	u64 cache_hits, cache_misses;
	char reason[64];		/* "-" if none */
	char lockd[64];			/* "-" if none or an older target */
};

int plx_dm_parse_status(const char *line, struct plx_dm_status *st);
int plx_dm_get_status(const char *name, struct plx_dm_status *st);

/* One entry of the "extents" message's answer: "E:d:FREE" / "E:m:FREE". */
struct plx_dm_extent {
	u64 extent;
	bool metadata;
	u64 free;
};

/*
 * Parse the answer of the "extents" message into at most @max entries;
 * returns the number found or -1 if malformed (or more than @max).
 */
int plx_dm_parse_extents(const char *answer, struct plx_dm_extent *ext,
			 size_t max);

/*
 * The local write cache (Documentation/dm-parallax.rst): before a VDI's
 * lock leaves the host (detach, hand-over), its log must be empty.
 */

/* Does a parallax table line (plx_dm_table) have the local_cache option? */
bool plx_dm_table_has_cache(const char *params);
/* Field 16 of the status line: the records pending in the log. */
#define PLX_DM_STATUS_PENDING	16
#define PLX_DM_PENDING_UNKNOWN	UINT64_MAX
/* *@pending = field 16 of @line; -1 if it has none (an older target). */
int plx_dm_status_pending(const char *line, u64 *pending);

/* The device operations the drain uses; tests substitute their own. */
struct plx_dm_ops {
	int (*table)(const char *name, char *buf, size_t len);
	int (*status)(const char *name, char *buf, size_t len);
	int (*message)(const char *name, const char *msg, char *result,
		       size_t len);
	int (*suspend)(const char *name);	/* flushing: drains the log */
	int (*resume)(const char *name);
};

extern const struct plx_dm_ops plx_dm_real_ops;

/*
 * Call before removing device @name (of VDI @vdi, for the messages) and
 * releasing its VDI lock.  A table without local_cache: returns 0 and
 * does nothing.  With one: sends "drain", suspends the device (with a
 * flush, so the target drains whatever was written meanwhile) and reads
 * the records pending (status field 16); returns 1 if it is 0, leaving
 * the device suspended, ready to be removed.  Else returns -1 with
 * *@pending the records left (PLX_DM_PENDING_UNKNOWN if unknown), errno
 * set and plx_errmsg() naming the VDI and the count: the device has been
 * resumed, and neither it nor the lock may go.
 */
int plx_dm_drain_for_release(const struct plx_dm_ops *ops, const char *name,
			     u64 vdi, u64 *pending);

/*
 * The same, for a caller that must go on serving while the log drains
 * (parallaxd: the drain may need extents it has to claim and grant).
 * The drain message runs in a child process, and @serve(@arg) is called
 * about five times a second until it ends.
 */
int plx_dm_drain_for_release_serving(const struct plx_dm_ops *ops,
				     const char *name, u64 vdi, u64 *pending,
				     void (*serve)(void *arg), void *arg);

/*
 * dm events without a thread per device: a private /dev/mapper/control
 * descriptor, armed with DM_DEV_ARM_POLL, polls readable (POLLIN) once
 * any dm device has raised an event since it was last armed.  Re-arm
 * before looking at the devices, so that no event is lost in between.
 * libdevmapper's DM_DEVICE_ARM_POLL task arms its own internal
 * descriptor, which the caller cannot poll, hence the raw ioctl.
 * plx_dm_event_arm() fails (ENOTTY/EINVAL) on kernels older than 4.37 of
 * the dm ioctl interface: poll the devices on a timer then.
 */
int plx_dm_event_open(void);
int plx_dm_event_arm(int fd);

#endif /* PLX_DMDEV_H */
