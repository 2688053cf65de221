/*
 * xattr.c - extended attributes, and the cache of their names.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <fuse_lowlevel.h>

#include "fs.h"

#define XATTR_PUFS "user.pufs."

/*
 * Extended attributes.  The names of a node's attributes are cached for
 * attr_timeout (LISTXATTR), so that asking for one it does not have, as
 * ls -l does twice per file, is answered here instead of by its holder.
 * A change through pufs, or a trap, makes the list be asked again.
 * POSIX ACLs and security labels do not cross the union: those names
 * are answered EOPNOTSUPP here, never asked of the holder, and left out
 * of listings, so ls -l, cp -a and tar stop asking after the first file.
 *
 * user.pufs.* is the union's own: user.pufs.peer, .uri and .export tell
 * which peer, contact address and export hold an object (for a merged
 * directory every copy, the primary first, separated by spaces), as
 * mergerfs's user.mergerfs.* do.  The mounting peer answers them from
 * its nodes; they are read-only (EPERM) and left out of listings, so
 * copies do not carry them, and a holder's own user.pufs.* is hidden.
 */

/* Whether an xattr name is the union's own (user.pufs.*). */
static bool
xattr_pufs(const char *name)
{
	return strncmp(name, XATTR_PUFS, sizeof XATTR_PUFS - 1) == 0;
}

/* Whether an xattr name is one of those the union does not carry. */
static bool
xattr_local(const char *name)
{
	return strncmp(name, "security.", 9) == 0 ||
	    strncmp(name, "system.posix_acl_", 17) == 0 || xattr_pufs(name);
}

/* Which part of a holder user.pufs.NAME tells, or -1 if none. */
static int
xattr_pufs_field(const char *name)
{
	static const char *const fields[] = { "peer", "uri", "export" };

	for (int i = 0; i < 3; i++)
		if (strcmp(name + sizeof XATTR_PUFS - 1, fields[i]) == 0)
			return i;
	return -1;
}

/*
 * The value of user.pufs.* field f of node n into *out (allocated): the
 * holder's name, URI or export name, for a directory each copy's.
 */
static int
xattr_pufs_value(struct node *n, int f, char **out)
{
	struct copy one, *c = &one;
	const struct export *ex;
	size_t nc = 1, len = 0;
	char *v = NULL;

	if (f < 0)
		return -ENODATA;
	if (n->isdir)
		c = union_copies(n, &nc);
	else if (n->peer == NULL || n->peer->state != PEER_UP)
		return -ENOENT;
	else
		one = (struct copy){ n->peer, n->export_id };
	for (size_t i = 0; i < nc; i++) {
		const char *s = f == 0 ? c[i].peer->name : c[i].peer->uri;
		char *nv;

		if (f == 2) {
			ex = union_export(c[i].peer, c[i].export_id);
			s = ex != NULL ? ex->name : "?";
		}
		xasprintf(&nv, "%s%s%s", v != NULL ? v : "", i ? " " : "", s);
		free(v);
		v = nv;
		len = strlen(v);
	}
	if (c != &one)
		free(c);
	if (len == 0) { /* a virtual directory: held by no one */
		free(v);
		return -ENODATA;
	}
	*out = v;
	return 0;
}

/* getxattr of a user.pufs.* name, answered here. */
static void
xattr_pufs_get(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct node *n = fsop_inode(ino);
	char *v = NULL;
	int err;

	if (n == NULL)
		err = -EIO;
	else
		err = xattr_pufs_value(n, xattr_pufs_field(name), &v);
	if (err < 0)
		fuse_reply_err(req, -err);
	else if (size == 0)
		fuse_reply_xattr(req, strlen(v));
	else if (size < strlen(v))
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, v, strlen(v));
	free(v);
}

static void
xattr_cb(struct call *c)
{
	struct fsop *op = c->arg;

	if (c->rep.error != 0) {
		fsop_done(op, c->rep.error);
		return;
	}
	if (c->req.length == 0)
		fuse_reply_xattr(op->req, (size_t)c->rep.value);
	else
		fuse_reply_buf(op->req, c->rep.data, c->rep.datalen);
	fsop_free(op);
}

/* Whether n's cached attribute names are there and fresh. */
static bool
xattr_fresh(const struct node *n)
{
	return n->xattrs_known && loop_now_ms() < n->xattrs_until;
}

/* Whether name is in n's cached list of attribute names. */
static bool
xattr_has(const struct node *n, const char *name)
{
	for (size_t off = 0; off < n->xattrs_len;
	     off += strlen(n->xattrs + off) + 1)
		if (strcmp(n->xattrs + off, name) == 0)
			return true;
	return false;
}

/* Answer a parked getxattr or listxattr from n's cached names. */
static void
xattr_answer(struct fsop *op)
{
	struct node *n = op->node;
	struct call *c;
	int err = 0;

	if (n->xattrs_error != 0) {
		fsop_done(op, n->xattrs_error);
		return;
	}
	if (op->type == PROTO_LISTXATTR) {
		if (op->flags == 0)
			fuse_reply_xattr(op->req, n->xattrs_len);
		else if ((size_t)op->flags < n->xattrs_len)
			fuse_reply_err(op->req, ERANGE);
		else
			fuse_reply_buf(op->req, n->xattrs, n->xattrs_len);
		fsop_free(op);
		return;
	}
	if (!xattr_has(n, op->name)) {
		fsop_done(op, -ENODATA);
		return;
	}
	if ((c = fsop_call(n, PROTO_GETXATTR, xattr_cb, op, &err)) == NULL) {
		fsop_done(op, err);
		return;
	}
	call_set_name(c, op->name);
	c->req.length = (uint64_t)op->flags;
	call_send(c);
}

/* The list of names came back: cache it, then answer. */
static void
xattr_names_cb(struct call *c)
{
	struct fsop *op = c->arg;
	struct node *n = op->node;

	free(n->xattrs);
	n->xattrs = NULL;
	n->xattrs_len = 0;
	n->xattrs_error = c->rep.error;
	if (c->rep.error == 0 && c->rep.datalen > 0) {
		const char *names = c->rep.data;
		size_t len;

		/* Keep the names whole and only those the union carries. */
		n->xattrs = xmalloc(c->rep.datalen);
		for (size_t off = 0; off < c->rep.datalen; off += len + 1) {
			len = strnlen(names + off, c->rep.datalen - off);
			if (off + len == c->rep.datalen)
				break;
			if (xattr_local(names + off))
				continue;
			memcpy(n->xattrs + n->xattrs_len, names + off, len + 1);
			n->xattrs_len += len + 1;
		}
	}
	n->xattrs_known = true;
	n->xattrs_until = loop_now_ms() + (uint64_t)(conf->attr_timeout * 1000);
	xattr_answer(op);
}

/*
 * A getxattr (name) or listxattr: from the cache, or fill it first.
 * An error if it cannot be parked (the caller replies it).
 */
static int
xattr_start(fuse_req_t req, fuse_ino_t ino, uint8_t type, const char *name,
    size_t size)
{
	struct fsop *op;
	struct node *n;
	struct call *c;
	int err;

	if ((err = fsop_node(req, ino, type, &op)) < 0)
		return err;
	n = op->node;
	op->name = name != NULL ? xstrdup(name) : NULL;
	op->flags = (int)(size > PROTO_MAX_XATTR ? PROTO_MAX_XATTR : size);
	if (xattr_fresh(n)) {
		xattr_answer(op);
		return 0;
	}
	if ((c = fsop_call(n, PROTO_LISTXATTR, xattr_names_cb, op, &err)) ==
	    NULL) {
		fsop_free(op);
		return err;
	}
	c->req.length = PROTO_MAX_XATTR;
	call_send(c);
	return 0;
}

/* node_foreach_name: forget the cached names of arg's object. */
static void
xattr_drop_same(struct node *n, void *arg)
{
	if (node_other_name(n, arg))
		n->xattrs_known = false;
}

/* A change of attributes answered: the cached names are old now. */
static void
xattr_changed_cb(struct call *c)
{
	struct fsop *op = c->arg;

	op->node->xattrs_known = false;
	if (!op->node->isdir && op->node->attr.nlink > 1)
		node_foreach_name(op->node, xattr_drop_same, op->node);
	fsop_done(op, c->rep.error);
}

void
xattr_set(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
    size_t size, int flags)
{
	struct call *c;
	int err;

	if (xattr_pufs(name))
		err = -EPERM; /* the union's own, read-only */
	else if (xattr_local(name))
		err = -EOPNOTSUPP;
	else if (size > PROTO_MAX_XATTR)
		err = -E2BIG;
	else
		err = fsop_simple(req, ino, PROTO_SETXATTR, xattr_changed_cb,
		    &c);
	if (err < 0) {
		fuse_reply_err(req, -err);
		return;
	}
	call_set_name(c, name);
	call_set_data(c, value, size);
	c->req.flags = (uint32_t)flags;
	call_send(c);
}

void
xattr_get(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	int err;

	if (xattr_pufs(name)) {
		xattr_pufs_get(req, ino, name, size);
		return;
	}
	if (xattr_local(name))
		err = -EOPNOTSUPP;
	else
		err = xattr_start(req, ino, PROTO_GETXATTR, name, size);
	if (err < 0)
		fuse_reply_err(req, -err);
}

void
xattr_list(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	int err;

	if ((err = xattr_start(req, ino, PROTO_LISTXATTR, NULL, size)) < 0)
		fuse_reply_err(req, -err);
}

void
xattr_remove(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct call *c;
	int err;

	if (xattr_pufs(name))
		err = -EPERM;
	else if (xattr_local(name))
		err = -EOPNOTSUPP;
	else
		err = fsop_simple(req, ino, PROTO_REMOVEXATTR, xattr_changed_cb,
		    &c);
	if (err < 0) {
		fuse_reply_err(req, -err);
		return;
	}
	call_set_name(c, name);
	call_send(c);
}
