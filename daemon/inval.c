/*
 * inval.c - what changes elsewhere invalidate for the FUSE side's caches: the
 * trap sink (discovery/trap.c hands it every change record it applies) and the
 * observer of our own calls' answers.
 *
 * A change record names an export's path; here it becomes the union
 * path, and the kernel forgets the dentries, attributes and data it
 * holds of it (through the notifier thread, fs_forget_*), and cached
 * listings of its directory go stale.  Forgetting is idempotent, so the
 * order in which records arrive does not matter.
 */
#include <stdlib.h>
#include <string.h>

#include "datagram.h"
#include "pufs.h"

/* node_foreach: forget what the kernel holds from peer arg. */
static void
inval_forget_peer_node(struct node *n, void *arg)
{
	struct peer *p = arg;
	bool held = !n->isdir && n->peer == p;

	for (size_t i = 0; n->isdir && i < n->ncopies && !held; i++)
		held = n->copies[i].peer == p;
	if (!held)
		return;
	/*
	 * A directory's entry is kept: forgetting it would unhash a
	 * directory some process may have as its working directory, whose
	 * getcwd() would then fail.  Its attributes go, and its listing
	 * (dircache) is asked again.
	 */
	if (!n->isdir && n->parent != NULL && n->linked)
		fs_forget_entry(n->parent, n->name);
	fs_forget_data(n, 0, 0);
}

/* node_foreach: the kernel's listing of every directory may be wrong. */
static void
inval_forget_listing_node(struct node *n, void *arg)
{
	(void)arg;
	if (n->isdir)
		fs_forget_listing(n);
}

/*
 * Forget everything cached from peer p (gap, restart, departure, and
 * its arrival).  Names may appear anywhere: one held by p, or one that
 * clashed with p's and is plain again; so every name the kernel holds
 * absent goes.  When p arrives, any directory may gain its entries, so
 * the kernel's listings of all go too; when it leaves, those it held.
 */
static void
inval_forget_peer(struct peer *p)
{
	dircache_drop_peer(p);
	node_foreach(inval_forget_peer_node, p);
	fs_forget_absent(NULL, NULL);
	if (p->state == PEER_UP)
		node_foreach(inval_forget_listing_node, NULL);
	else
		fs_forget_listing(node_root());
}

/* The kernel forgets what it knows of union path upath. */
static void
inval_forget_path(struct peer *p, const char *upath, uint8_t kind, uint64_t off,
    uint64_t len)
{
	struct node *dir = node_root(), *n = NULL;
	char *copy = xstrdup(upath), *comp, *save = NULL, *next;
	char *suffixed;

	for (comp = strtok_r(copy, "/", &save); comp != NULL; comp = next) {
		next = strtok_r(NULL, "/", &save);
		if (next == NULL)
			break; /* comp is the last part */
		if ((dir = node_child(dir, comp)) == NULL)
			goto out; /* nothing cached below */
	}
	if (comp == NULL) { /* the root itself */
		fs_forget_attr(dir);
		goto out;
	}
	xasprintf(&suffixed, "%s@%s", comp, p->uri);
	for (int i = 0; i < 2; i++) {
		const char *name = i == 0 ? comp : suffixed;

		n = node_child(dir, name);
		switch (kind) {
		case DGRAM_CREATE:
			/*
			 * A new name has no dentry here unless it stood for
			 * something else (a clash appearing): forget those,
			 * but never a directory, which may be a working
			 * directory (see inval_forget_peer_node).  Or the
			 * kernel holds it absent (a negative entry).
			 */
			if (n != NULL && !n->isdir)
				fs_forget_entry(dir, name);
			if (n != NULL)
				fs_forget_data(n, 0, 0);
			else
				fs_forget_absent(dir, name);
			break;
		case DGRAM_REMOVE:
		case DGRAM_RENAME:
			/* A rename's second record is its new name. */
			fs_forget_entry(dir, name);
			fs_forget_absent(dir, name);
			if (n != NULL)
				fs_forget_data(n, 0, 0);
			break;
		case DGRAM_DATA:
			if (n != NULL)
				fs_forget_data(n, off, len);
			break;
		default:
			if (n != NULL)
				fs_forget_data(n, 0, 0);
			break;
		}
	}
	free(suffixed);
	if (kind == DGRAM_CREATE || kind == DGRAM_REMOVE ||
	    kind == DGRAM_RENAME)
		fs_forget_listing(dir); /* its entries, times, link count */
out:
	free(copy);
}

/*
 * An entry of the directory holding path came or went: the directory's
 * times and link count changed, and the listing that shows them (its
 * parent's, which answers its getattr) is stale.
 */
static void
inval_dir_changed(struct peer *p, uint32_t export_id, const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;

	if (slash == NULL)
		return; /* the export's root: no listing shows it */
	dir = xstrndup(path, (size_t)(slash - path));
	dircache_changed(p, export_id, dir);
	free(dir);
}

/*
 * Whether a DATA record of p about union path upath is the echo of our
 * own write-backs (io_data_echo): the file's caches hold what it says.
 */
static bool
inval_data_echo(struct peer *p, const char *upath, uint64_t off, uint64_t len)
{
	struct node *n = node_root();
	char *copy = xstrdup(upath), *comp, *save = NULL;

	for (comp = strtok_r(copy, "/", &save); comp != NULL && n != NULL;
	     comp = strtok_r(NULL, "/", &save))
		n = node_child(n, comp);
	free(copy);
	return n != NULL && !n->isdir && n->peer == p &&
	    io_data_echo(n, off, len);
}

/* One change of path in export export_id of p; false: no such export. */
static bool
inval_changed(struct peer *p, uint8_t kind, uint32_t export_id,
    const char *path, uint64_t off, uint64_t len)
{
	const struct export *ex = union_export(p, export_id);
	char *upath;

	if (ex == NULL)
		return false;
	upath = union_path_of(ex, path);
	if (kind == DGRAM_DATA && inval_data_echo(p, upath, off, len)) {
		free(upath);
		return true;
	}
	/*
	 * The echo of a change of ours: the kernel made it itself and
	 * knows it already; forgetting would only cost it a lookup and a
	 * listing.  The directory's new times went in place, or stale,
	 * with its answer (inval_dir_answered).
	 */
	if (dircache_trap(p, export_id, kind, path)) {
		free(upath);
		return true;
	}
	inval_forget_path(p, upath, kind, off, len);
	if (kind == DGRAM_CREATE || kind == DGRAM_REMOVE ||
	    kind == DGRAM_RENAME)
		inval_dir_changed(p, export_id, path);
	free(upath);
	return true;
}

const struct trap_sink inval_sink = {
	.changed = inval_changed,
	.forget_peer = inval_forget_peer,
};

/*
 * A change of ours to an entry of directory r->path (a link's r->path2)
 * was made: the
 * directory's times (and link count) changed, which its parent's
 * listing shows.  The holder said what they are now (PROTO_CAP_DIR_ATTR):
 * they go in place, so the kernel's getattr of the directory, which
 * follows every create and unlink, is answered here; else the listing
 * is stale for them.
 */
static void
inval_dir_answered(const struct call *c)
{
	const struct proto_req *r = &c->req;
	bool link = r->type == PROTO_LINK; /* its directory is the second */
	uint32_t export_id = link ? r->export2 : r->export_id;
	const char *dir = link ? r->path2 : r->path;

	if (c->rep.has_dir_attr) {
		dircache_update(c->peer, export_id, dir, &c->rep.dir_attr);
		dircache_dir_attr_set(c->peer, export_id, dir,
		    &c->rep.dir_attr);
	} else
		dircache_changed(c->peer, export_id, dir);
}

/*
 * A call of ours was answered without an error: the listings that show
 * what it changed are stale now, and fresh attributes go in place.  A
 * directory whose entries changed has new times: the listing of its
 * parent, which shows them, is stale too.
 */
void
inval_answered(const struct call *c)
{
	const struct proto_req *r = &c->req;

	switch (r->type) {
	case PROTO_CREATE:
	case PROTO_MKNOD:
	case PROTO_MKDIR:
	case PROTO_SYMLINK:
		dircache_set(c->peer, r->export_id, r->path, r->name,
		    &c->rep.attr);
		inval_dir_answered(c);
		break;
	case PROTO_UNLINK:
	case PROTO_RMDIR:
		dircache_unlinked(c->peer, r->export_id, r->path, r->name,
		    c->rep.has_attr ? &c->rep.attr : NULL);
		inval_dir_answered(c);
		break;
	case PROTO_RENAME:
		dircache_renamed(c->peer, r->export_id, r->path, r->name,
		    r->export2, r->path2, r->name2, r->flags);
		/* Both directories' times show in their parents' listings. */
		dircache_changed(c->peer, r->export_id, r->path);
		dircache_changed(c->peer, r->export2, r->path2);
		break;
	case PROTO_REPLACE:
		/* The temporary name never showed: the destination is new. */
		dircache_set(c->peer, r->export2, r->path2, r->name2,
		    &c->rep.attr);
		dircache_changed(c->peer, r->export_id, r->path);
		dircache_changed(c->peer, r->export2, r->path2);
		break;
	case PROTO_LINK:
		/* The new link count shows in the source's listing. */
		dircache_update(c->peer, r->export_id, r->path, &c->rep.attr);
		/* The new name goes in place, as a create's. */
		dircache_set(c->peer, r->export2, r->path2, r->name2,
		    &c->rep.attr);
		inval_dir_answered(c);
		break;
	case PROTO_SETATTR:
		dircache_changed(c->peer, r->export_id, r->path);
		break;
	case PROTO_OPEN:
	case PROTO_STAT:
		/*
		 * Fresh attributes from the holder (close-to-open): the
		 * cached listing must not answer a getattr with older ones.
		 */
		if (r->fh == 0)
			dircache_update(c->peer, r->export_id, r->path,
			    &c->rep.attr);
		break;
	default:
		break;
	}
}
