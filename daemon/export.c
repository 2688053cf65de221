/*
 * export.c - the local export backend: the exports table and the
 * context the daemon gives the serving side (export_init()), and
 * export_serve(), which checks what a request names and hands it to its
 * operation (serve.c).
 *
 * Every request names an object by (export, path relative to the export
 * root), resolved beneath that root (beneath.c); open files are handles
 * of one table (handle.c); what other peers may not do with this
 * daemon's privilege is identity.c's.
 *
 * This code runs on worker threads: it touches only its arguments, its
 * context (export_init(), read-only after), the handle table (under its
 * own lock), the journal and the watcher (each under its own).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "export-int.h"
#include "log.h"

/* Take the serving side's context (a copy) before the first request. */
void
export_init(const struct export_ctx *c)
{
	export_context = *c;
}

/* Open the export's root directory. */
int
export_open(struct export *ex, const struct config_export *ce, uint32_t id)
{
	memset(ex, 0, sizeof *ex);
	ex->id = id;
	ex->name = xstrdup(ce->name);
	ex->path = xstrdup(ce->path);
	ex->at = xstrdup(ce->at);
	ex->read_only = ce->read_only;
	ex->rootfd = open(ce->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (ex->rootfd == -1)
		return -errno;
	return 0;
}

/* Release an export's resources. */
void
export_close(struct export *ex)
{
	if (ex->rootfd > 0)
		close(ex->rootfd);
	free(ex->name);
	free(ex->path);
	free(ex->at);
	memset(ex, 0, sizeof *ex);
}

/* Free what a reply points into. */
void
export_mem_free(struct export_mem *m)
{
	free(m->data);
	free(m->names);
	m->data = NULL;
	m->names = NULL;
	m->head = 0;
}

/* The export a request names, or NULL. */
static struct export *
export_find(uint32_t id)
{
	return id < export_context.nexports ? &export_context.exports[id]
					    : NULL;
}

/* Whether the request type changes something. */
static bool
export_modifies(const struct proto_req *r)
{
	switch (r->type) {
	case PROTO_SETATTR:
	case PROTO_MKNOD:
	case PROTO_MKDIR:
	case PROTO_SYMLINK:
	case PROTO_LINK:
	case PROTO_UNLINK:
	case PROTO_RMDIR:
	case PROTO_RENAME:
	case PROTO_CREATE:
	case PROTO_REPLACE:
	case PROTO_SETXATTR:
	case PROTO_REMOVEXATTR:
		return true;
	case PROTO_OPEN:
		return (r->flags & O_ACCMODE) != O_RDONLY ||
		    (r->flags & O_TRUNC);
	default:
		return false;
	}
}

/* Serve one request; fills rep->error (0 or a negative errno) and the body. */
void
export_serve(uint32_t owner, const struct proto_req *r, struct proto_rep *rep,
    struct export_mem *mem)
{
	struct export *ex, *ex2;
	int rc;

	memset(rep, 0, sizeof *rep);
	rep->type = r->type;
	rep->id = r->id;
	ex = export_find(r->export_id);
	ex2 = export_find(r->export2);

	switch (r->type) {
	case PROTO_READ:
	case PROTO_WRITE:
	case PROTO_RELEASE:
	case PROTO_FSYNC:
	case PROTO_FALLOCATE:
	case PROTO_LSEEK:
	case PROTO_COPY_RANGE:
		break; /* by handle: handle_get checks what it may do */
	case PROTO_STAT:
		if (r->fh != 0)
			break;
		/* FALLTHROUGH */
	default:
		if (ex == NULL) {
			rep->error = -ENOENT;
			return;
		}
		if (ex->read_only && export_modifies(r)) {
			rep->error = -EROFS;
			return;
		}
	}

	/* As its caller, with identity = caller; see identity.c. */
	if ((rep->error = identity_enter(r)) < 0)
		return;
	switch (r->type) {
	case PROTO_STAT:
		rc = r->fh != 0 ? serve_fh_op(owner, r, rep)
				: serve_path_op(ex, r, rep, mem);
		break;
	case PROTO_READLINK:
	case PROTO_STATFS:
	case PROTO_ACCESS:
	case PROTO_FSYNCDIR:
		rc = serve_path_op(ex, r, rep, mem);
		break;
	case PROTO_SETATTR:
		rc = serve_setattr(ex, owner, r, rep);
		break;
	case PROTO_MKNOD:
	case PROTO_MKDIR:
	case PROTO_SYMLINK:
		rc = serve_make(ex, owner, r, rep);
		break;
	case PROTO_LINK:
	case PROTO_RENAME:
	case PROTO_REPLACE:
		if (ex2 == NULL)
			rc = -ENOENT;
		else if (ex2->read_only)
			rc = -EROFS;
		else if (r->type == PROTO_LINK)
			rc = serve_link(ex, ex2, r, rep);
		else if (r->type == PROTO_REPLACE)
			rc = serve_replace(ex, ex2, owner, r, rep);
		else
			rc = serve_rename(ex, ex2, r);
		break;
	case PROTO_UNLINK:
	case PROTO_RMDIR:
		rc = serve_remove(ex, r, rep);
		break;
	case PROTO_OPEN:
	case PROTO_CREATE:
		rc = serve_open_file(ex, owner, r, rep);
		break;
	case PROTO_READ:
		rc = serve_read(owner, r, rep, mem);
		break;
	case PROTO_WRITE:
		rc = serve_write(owner, r, rep);
		break;
	case PROTO_RELEASE:
		rc = handle_release(r->fh, owner);
		break;
	case PROTO_FSYNC:
	case PROTO_FALLOCATE:
	case PROTO_LSEEK:
	case PROTO_COPY_RANGE:
		rc = serve_fh_op(owner, r, rep);
		break;
	case PROTO_READDIR:
		rc = serve_readdir(ex, r, rep, mem);
		break;
	case PROTO_CHANGES:
		rc = serve_changes(ex, r, rep, mem);
		break;
	case PROTO_SUMS:
		rc = serve_sums(ex, r, rep, mem);
		break;
	case PROTO_SETXATTR:
	case PROTO_GETXATTR:
	case PROTO_LISTXATTR:
	case PROTO_REMOVEXATTR:
		rc = serve_xattr(ex, owner, r, rep, mem);
		break;
	default:
		rc = -ENOSYS;
	}
	identity_leave();
	rep->error = rc < 0 ? rc : 0;
}
