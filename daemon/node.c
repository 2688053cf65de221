/*
 * node.c - the inodes the kernel knows.
 *
 * A node is found by its FUSE nodeid, or by (parent, name) while it is
 * linked there, or with the other names of its file by the st_ino shown
 * (node_foreach_name()).  Nodeids come from a 64-bit counter and are never
 * reused, so generations are not needed.  The st_ino shown is separate: a hash
 * of the holder's peer name, st_dev and st_ino, stable while that peer is up
 * and unique across the union (a merged directory shows its primary
 * copy's).  Lookup counts go up on every entry reply and down on forget;
 * an underflow is a bug and aborts.  A node lives while the kernel or a
 * child, handle or request in flight references it; the root is pinned.
 */
#include <stdlib.h>
#include <string.h>

#include <fuse_lowlevel.h>

#include "merge.h"
#include "pufs.h"

static struct {
	struct node **by_id;   /* chained by hnext_id */
	struct node **by_name; /* chained by hnext_name */
	struct node **by_ino;  /* chained by hnext_ino: the st_ino shown */
	size_t nbuckets;
	size_t count;
	uint64_t next_id;
	struct node *root;
} nt;

/* 64-bit mix (splitmix64 finaliser). */
static uint64_t
node_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* FNV-1a of a string, folded into h. */
static uint64_t
node_strhash(uint64_t h, const char *s)
{
	h ^= 0xcbf29ce484222325ULL;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 0x100000001b3ULL;
	return h;
}

/*
 * Split "BASE@HOST:PORT" when the suffix is a known peer's address:
 * *pin is that peer and *baselen the length of BASE.  Otherwise the whole
 * name is the base.  Returns 1 when pinned, 0 when not.
 */
int
node_split_name(const char *name, struct peer **pin, size_t *baselen)
{
	const char *uri = merge_split_name(name, baselen);
	struct peer *p;

	*pin = NULL;
	if (uri == NULL || (p = peer_by_uri(uri)) == NULL) {
		*baselen = strlen(name);
		return 0;
	}
	*pin = p;
	return 1;
}

/* The st_ino shown for an object of peer with (dev, ino). */
uint64_t
node_ino_hash(const char *peer, uint64_t dev, uint64_t ino)
{
	uint64_t h = node_mix(node_strhash(0, peer) ^ node_mix(dev) ^
	    node_mix(ino + 0x9e3779b97f4a7c15ULL));

	return h <= FUSE_ROOT_ID ? h + 2 : h;
}

/* Bucket of a nodeid. */
static size_t
node_idx_id(uint64_t id)
{
	return node_mix(id) & (nt.nbuckets - 1);
}

/* Bucket of an st_ino shown. */
static size_t
node_idx_ino(uint64_t ino)
{
	return node_mix(ino ^ 0x5851f42d4c957f2dULL) & (nt.nbuckets - 1);
}

/* Bucket of (parent, name). */
static size_t
node_idx_name(uint64_t parent, const char *name)
{
	return node_strhash(node_mix(parent), name) & (nt.nbuckets - 1);
}

/* Double the tables when they get crowded. */
static void
node_grow(void)
{
	size_t old = nt.nbuckets, i;
	struct node **by_id = nt.by_id, **by_name = nt.by_name;
	struct node **by_ino = nt.by_ino, *n, *next;

	nt.nbuckets = old * 2;
	nt.by_id = xcalloc(nt.nbuckets, sizeof *nt.by_id);
	nt.by_name = xcalloc(nt.nbuckets, sizeof *nt.by_name);
	nt.by_ino = xcalloc(nt.nbuckets, sizeof *nt.by_ino);
	for (i = 0; i < old; i++) {
		for (n = by_ino[i]; n != NULL; n = next) {
			size_t b = node_idx_ino(n->ino);

			next = n->hnext_ino;
			n->hnext_ino = nt.by_ino[b];
			nt.by_ino[b] = n;
		}
		for (n = by_id[i]; n != NULL; n = next) {
			size_t b = node_idx_id(n->id);

			next = n->hnext_id;
			n->hnext_id = nt.by_id[b];
			nt.by_id[b] = n;
		}
		for (n = by_name[i]; n != NULL; n = next) {
			size_t b = node_idx_name(n->parent->id, n->name);

			next = n->hnext_name;
			n->hnext_name = nt.by_name[b];
			nt.by_name[b] = n;
		}
	}
	free(by_id);
	free(by_name);
	free(by_ino);
}

/* Put n in the chain of its st_ino. */
static void
node_ino_chain(struct node *n)
{
	size_t b = node_idx_ino(n->ino);

	n->hnext_ino = nt.by_ino[b];
	nt.by_ino[b] = n;
}

/* Take n out of the chain of its st_ino. */
static void
node_ino_unchain(struct node *n)
{
	struct node **pp = &nt.by_ino[node_idx_ino(n->ino)];

	while (*pp != n)
		pp = &(*pp)->hnext_ino;
	*pp = n->hnext_ino;
	n->hnext_ino = NULL;
}

/* Set the st_ino shown for n. */
void
node_set_ino(struct node *n, uint64_t ino)
{
	if (n->ino == ino)
		return;
	node_ino_unchain(n);
	n->ino = ino;
	node_ino_chain(n);
}

/* Create the tables and the root node. */
void
node_init(void)
{
	nt.nbuckets = 1024;
	nt.by_id = xcalloc(nt.nbuckets, sizeof *nt.by_id);
	nt.by_name = xcalloc(nt.nbuckets, sizeof *nt.by_name);
	nt.by_ino = xcalloc(nt.nbuckets, sizeof *nt.by_ino);
	nt.next_id = FUSE_ROOT_ID;
	nt.root = node_new(NULL, "");
	nt.root->isdir = true;
	node_set_ino(nt.root, FUSE_ROOT_ID);
	nt.root->refs++; /* pinned */
}

/* The root directory. */
struct node *
node_root(void)
{
	return nt.root;
}

/* The node with a nodeid, or NULL. */
struct node *
node_get(uint64_t id)
{
	struct node *n;

	for (n = nt.by_id[node_idx_id(id)]; n != NULL; n = n->hnext_id)
		if (n->id == id)
			return n;
	return NULL;
}

/* The node linked as name in parent, or NULL. */
struct node *
node_child(struct node *parent, const char *name)
{
	struct node *n;

	for (n = nt.by_name[node_idx_name(parent->id, name)]; n != NULL;
	     n = n->hnext_name)
		if (n->parent == parent && strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

/* Put n in the (parent, name) index. */
static void
node_link(struct node *n)
{
	size_t b = node_idx_name(n->parent->id, n->name);

	n->hnext_name = nt.by_name[b];
	nt.by_name[b] = n;
	n->linked = true;
}

/* Take n out of the (parent, name) index; it lives on by its id. */
void
node_unlink(struct node *n)
{
	struct node **pp;

	if (!n->linked)
		return;
	pp = &nt.by_name[node_idx_name(n->parent->id, n->name)];
	while (*pp != n)
		pp = &(*pp)->hnext_name;
	*pp = n->hnext_name;
	n->hnext_name = NULL;
	n->linked = false;
}

/*
 * A new node named name under parent, linked there (replacing whatever
 * was linked under that name).  It starts with no kernel references.
 */
struct node *
node_new(struct node *parent, const char *name)
{
	struct node *n = xcalloc(1, sizeof *n), *old;
	size_t b;

	if (nt.count + 1 > nt.nbuckets)
		node_grow();
	n->id = nt.next_id++;
	TAILQ_INIT(&n->handles);
	n->name = xstrdup(name);
	n->baselen = strlen(name);
	b = node_idx_id(n->id);
	n->hnext_id = nt.by_id[b];
	nt.by_id[b] = n;
	node_ino_chain(n); /* ino 0 until node_set_ino() */
	nt.count++;
	if (parent != NULL) {
		if ((old = node_child(parent, name)) != NULL)
			node_unlink(old);
		n->parent = parent;
		node_ref(parent);
		node_link(n);
	}
	return n;
}

/* Rename: move n under newparent as newname, displacing any other. */
void
node_move(struct node *n, struct node *newparent, const char *newname)
{
	struct node *old;

	node_unlink(n);
	if ((old = node_child(newparent, newname)) != NULL && old != n)
		node_unlink(old);
	node_ref(newparent);
	node_unref(n->parent);
	n->parent = newparent;
	free(n->name);
	n->name = xstrdup(newname);
	node_split_name(n->name, &n->pin, &n->baselen);
	node_link(n);
}

/* Free n: it has no kernel references and no users. */
static void
node_free(struct node *n)
{
	struct node **pp, *parent = n->parent;

	node_unlink(n);
	pp = &nt.by_id[node_idx_id(n->id)];
	while (*pp != n)
		pp = &(*pp)->hnext_id;
	*pp = n->hnext_id;
	node_ino_unchain(n);
	nt.count--;
	free(n->name);
	free(n->copies);
	free(n->xattrs);
	free(n);
	if (parent != NULL)
		node_unref(parent);
}

/* Take a reference for a child, handle or request in flight. */
void
node_ref(struct node *n)
{
	n->refs++;
}

/* Drop a reference; free the node when nothing holds it. */
void
node_unref(struct node *n)
{
	if (n->refs == 0)
		fatalx("node %llu: reference underflow",
		    (unsigned long long)n->id);
	if (--n->refs == 0 && n->nlookup == 0)
		node_free(n);
}

/* The kernel forgets nlookup references. */
void
node_forget(struct node *n, uint64_t nlookup)
{
	if (n->nlookup < nlookup)
		fatalx("node %llu: forget %llu > lookups %llu",
		    (unsigned long long)n->id, (unsigned long long)nlookup,
		    (unsigned long long)n->nlookup);
	n->nlookup -= nlookup;
	if (n->nlookup == 0 && n->refs == 0)
		node_free(n);
}

/* The union path of n ("/" for the root), from its base names. */
char *
node_path(const struct node *n)
{
	const struct node *m;
	size_t len = 0, pos;
	char *p;

	for (m = n; m->parent != NULL; m = m->parent)
		len += m->baselen + 1;
	if (len == 0)
		return xstrdup("/");
	p = xmalloc(len + 1);
	p[len] = '\0';
	pos = len;
	for (m = n; m->parent != NULL; m = m->parent) {
		pos -= m->baselen;
		memcpy(p + pos, m->name, m->baselen);
		p[--pos] = '/';
	}
	return p;
}

/* The union path of entry name of directory dir. */
char *
node_child_path(const struct node *dir, const char *name)
{
	char *dpath = node_path(dir), *p;

	xasprintf(&p, "%s/%s", dir->parent == NULL ? "" : dpath, name);
	free(dpath);
	return p;
}

/* Replace a directory's copies. */
void
node_set_copies(struct node *n, const struct copy *c, size_t nc)
{
	free(n->copies);
	n->copies = nc ? xcalloc(nc, sizeof *c) : NULL;
	if (nc)
		memcpy(n->copies, c, nc * sizeof *c);
	n->ncopies = nc;
}

/* Call fn for every node (fn must not add or free nodes). */
void
node_foreach(void (*fn)(struct node *, void *), void *arg)
{
	for (size_t i = 0; i < nt.nbuckets; i++)
		for (struct node *n = nt.by_id[i]; n != NULL; n = n->hnext_id)
			fn(n, arg);
}

/*
 * Call fn for every other name of like's object (node_other_name()),
 * found by the st_ino shown, which for a file is the hash of its
 * holder, device and inode: a link or unlink of one name of a file
 * with many costs its names, not a walk of every node (rm -r of a
 * cp -al copy).  A file whose st_ino is not that hash (a replicated
 * file's is its path's) is looked for in every node.  fn must not add
 * or free nodes.
 */
void
node_foreach_name(const struct node *like, void (*fn)(struct node *, void *),
    void *arg)
{
	struct node *n;

	if (like->isdir || like->peer == NULL)
		return;
	if (like->ino !=
	    node_ino_hash(like->peer->name, like->attr.dev, like->attr.ino)) {
		node_foreach(fn, arg);
		return;
	}
	for (n = nt.by_ino[node_idx_ino(like->ino)]; n != NULL;
	     n = n->hnext_ino)
		if (n->ino == like->ino)
			fn(n, arg);
}

/*
 * Whether n has no name any more: it, or a directory above it, was
 * unlinked, renamed over or removed here (the root always has one).
 * Its path names another object now, or none.
 */
bool
node_unnamed(const struct node *n)
{
	for (; n->parent != NULL; n = n->parent)
		if (!n->linked)
			return true;
	return false;
}

/*
 * Whether n is another name of the object like is: a file of the same
 * holder with the same device and inode (a hard link), not like itself.
 */
bool
node_other_name(const struct node *n, const struct node *like)
{
	return !n->isdir && n != like && n->peer == like->peer &&
	    n->attr.dev == like->attr.dev && n->attr.ino == like->attr.ino;
}

/* Number of nodes, for status. */
size_t
node_count(void)
{
	return nt.count;
}

/* Free every node (at exit, after unmount). */
void
node_free_all(void)
{
	struct node *n, *next;

	for (size_t i = 0; i < nt.nbuckets; i++) {
		for (n = nt.by_id[i]; n != NULL; n = next) {
			struct handle *h;

			next = n->hnext_id;
			/* Files still open at unmount: the kernel never
			 * releases them, and their holders closed them. */
			while ((h = TAILQ_FIRST(&n->handles)) != NULL) {
				TAILQ_REMOVE(&n->handles, h, nentry);
				free(h);
			}
			free(n->name);
			free(n->copies);
			free(n->xattrs);
			free(n);
		}
	}
	free(nt.by_id);
	free(nt.by_name);
	free(nt.by_ino);
	memset(&nt, 0, sizeof nt);
}
