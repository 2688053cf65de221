/*
 * handle.c - the table of open file handles of the serving side, shared
 * by every worker under one lock: each handle bound to the stream that
 * opened it and to its export, at most max_handles per peer.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "export-int.h"
#include "log.h"

/*
 * Open file handles.  A handle is (generation << 32 | slot + 1) so a
 * stale or forged handle never reaches another file's descriptor.  A
 * handle is bound to the owner (stream) that opened it and to its
 * export: any other use is EBADF, so one peer cannot use another's
 * handles, nor a handle of a read-only export under a writable
 * export's id.  A handle in use by a request holds a reference; release
 * only marks it and the descriptor is closed when the last user is
 * done, so a peer that releases while reading cannot make us use a
 * recycled fd.
 */
struct handle_slot {
	int fd;     /* HANDLE_FREE, HANDLE_RESERVED or the descriptor */
	char *path; /* as opened, for change notices; owned */
	uint32_t gen;
	uint32_t owner;
	uint32_t export_id;
	unsigned refs;
	bool released;
	bool writable;  /* opened for writing */
	bool read_only; /* of a read-only export */
};

#define HANDLE_FREE (-1)
#define HANDLE_RESERVED (-2) /* counted for its owner, not usable yet */

static struct {
	pthread_mutex_t lock;
	struct handle_slot *slots;
	uint32_t nslots;
	unsigned nopen;
} handles = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Told of every handle that goes (the lock table: its locks go too). */
static void (*handle_gone)(uint64_t fh, uint32_t owner);

/* Set who hears of handles that go; before the first request. */
void
handle_on_gone(void (*fn)(uint64_t fh, uint32_t owner))
{
	handle_gone = fn;
}

/*
 * Reserve a slot for a handle owner is about to open: its index, or
 * -EMFILE when a peer (owner other than 0, this daemon's own mount)
 * already holds max_handles handles here.  Reserving before the open
 * keeps the count exact with opens of one owner on several workers.
 */
int
handle_reserve(uint32_t owner)
{
	uint32_t i, n, held = 0, free_slot = UINT32_MAX;

	pthread_mutex_lock(&handles.lock);
	for (i = 0; i < handles.nslots; i++) {
		struct handle_slot *s = &handles.slots[i];

		if (s->fd == HANDLE_FREE && free_slot == UINT32_MAX)
			free_slot = i;
		else if (s->owner == owner &&
		    (s->fd == HANDLE_RESERVED || (s->fd >= 0 && !s->released)))
			held++;
	}
	if (owner != 0 && held >= export_context.max_handles) {
		pthread_mutex_unlock(&handles.lock);
		return -EMFILE;
	}
	if ((i = free_slot) == UINT32_MAX) {
		i = handles.nslots;
		n = handles.nslots ? handles.nslots * 2 : 64;
		handles.slots = xreallocarray(handles.slots, n,
		    sizeof *handles.slots);
		for (uint32_t j = handles.nslots; j < n; j++)
			handles.slots[j] = (struct handle_slot){
				.fd = HANDLE_FREE
			};
		handles.nslots = n;
	}
	handles.slots[i].fd = HANDLE_RESERVED;
	handles.slots[i].owner = owner;
	pthread_mutex_unlock(&handles.lock);
	return (int)i;
}

/* Give back a reserved slot whose open failed. */
void
handle_cancel(int slot)
{
	pthread_mutex_lock(&handles.lock);
	handles.slots[slot].fd = HANDLE_FREE;
	pthread_mutex_unlock(&handles.lock);
}

/* Record fd as the handle of a reserved slot; returns the handle. */
uint64_t
handle_new(int slot, int fd, const struct export *ex, bool writable, char *path)
{
	struct handle_slot *s;
	uint64_t fh;

	pthread_mutex_lock(&handles.lock);
	s = &handles.slots[slot];
	s->fd = fd;
	s->gen++;
	s->export_id = ex->id;
	s->refs = 1; /* the open itself */
	s->released = false;
	s->writable = writable;
	s->read_only = ex->read_only;
	s->path = path;
	handles.nopen++;
	fh = ((uint64_t)s->gen << 32) | (uint32_t)(slot + 1);
	pthread_mutex_unlock(&handles.lock);
	return fh;
}

/* Find the slot of a handle; the caller holds the lock. */
static struct handle_slot *
handle_slot_locked(uint64_t fh, uint32_t owner)
{
	uint32_t i = (uint32_t)fh;
	struct handle_slot *s;

	if (i == 0 || i > handles.nslots)
		return NULL;
	s = &handles.slots[i - 1];
	if (s->fd < 0 || s->released || s->gen != (uint32_t)(fh >> 32) ||
	    s->owner != owner)
		return NULL;
	return s;
}

/*
 * Take a reference on a handle of owner opened in export_id (or in any
 * export with HANDLE_ANY_EXPORT), to write through it if write: its fd;
 * -EBADF for a handle that is unknown, another owner's, another
 * export's or (to write) not open for writing; -EROFS to write to a
 * file of a read-only export.  *writable, if not NULL, tells whether
 * the handle is open for writing.
 */
int
handle_get(uint64_t fh, uint32_t owner, uint32_t export_id, bool write,
    bool *writable)
{
	struct handle_slot *s;
	int fd = -EBADF;

	pthread_mutex_lock(&handles.lock);
	if ((s = handle_slot_locked(fh, owner)) == NULL ||
	    (export_id != HANDLE_ANY_EXPORT && s->export_id != export_id))
		fd = -EBADF;
	else if (write && s->read_only)
		fd = -EROFS;
	else if (write && !s->writable)
		fd = -EBADF;
	else {
		s->refs++;
		fd = s->fd;
		if (writable != NULL)
			*writable = s->writable;
	}
	pthread_mutex_unlock(&handles.lock);
	return fd;
}

/* Drop a reference taken by handle_get or handle_new; close at zero. */
static void
handle_put_slot(struct handle_slot *s)
{
	if (--s->refs == 0) {
		close(s->fd);
		s->fd = HANDLE_FREE;
		free(s->path);
		s->path = NULL;
		handles.nopen--;
	}
}

/* Drop a reference to the handle (by number). */
void
handle_put(uint64_t fh)
{
	uint32_t i = (uint32_t)fh;

	pthread_mutex_lock(&handles.lock);
	if (i > 0 && i <= handles.nslots && handles.slots[i - 1].fd >= 0 &&
	    handles.slots[i - 1].gen == (uint32_t)(fh >> 32))
		handle_put_slot(&handles.slots[i - 1]);
	pthread_mutex_unlock(&handles.lock);
}

/* Release a handle: no new users; closed when the last one is done. */
int
handle_release(uint64_t fh, uint32_t owner)
{
	struct handle_slot *s;
	int rc = -EBADF;

	pthread_mutex_lock(&handles.lock);
	if ((s = handle_slot_locked(fh, owner)) != NULL) {
		s->released = true;
		handle_put_slot(s);
		rc = 0;
	}
	pthread_mutex_unlock(&handles.lock);
	if (rc == 0 && handle_gone != NULL)
		handle_gone(fh, owner);
	return rc;
}

/* Close every handle of owner. */
void
export_drop_owner(uint32_t owner)
{
	pthread_mutex_lock(&handles.lock);
	for (uint32_t i = 0; i < handles.nslots; i++) {
		struct handle_slot *s = &handles.slots[i];

		if (s->fd >= 0 && !s->released && s->owner == owner) {
			s->released = true;
			handle_put_slot(s);
		}
	}
	pthread_mutex_unlock(&handles.lock);
	if (handle_gone != NULL)
		handle_gone(0, owner);
}

/*
 * The export and path a handle was opened as (a copy, or NULL if the
 * handle is unknown): change notices about writes name the file.
 */
char *
export_fh_path(uint64_t fh, uint32_t owner, uint32_t *export_id)
{
	uint32_t i = (uint32_t)fh;
	struct handle_slot *s;
	char *path = NULL;

	pthread_mutex_lock(&handles.lock);
	if (i > 0 && i <= handles.nslots) {
		s = &handles.slots[i - 1];
		if (s->fd >= 0 && s->gen == (uint32_t)(fh >> 32) &&
		    s->owner == owner && s->path != NULL) {
			path = xstrdup(s->path);
			*export_id = s->export_id;
		}
	}
	pthread_mutex_unlock(&handles.lock);
	return path;
}

/* Number of open handles. */
unsigned
export_open_handles(void)
{
	unsigned n;

	pthread_mutex_lock(&handles.lock);
	n = handles.nopen;
	pthread_mutex_unlock(&handles.lock);
	return n;
}
