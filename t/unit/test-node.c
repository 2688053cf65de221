/*
 * test-node.c - unit test of the lookup-count rules of daemon/node.c,
 * without FUSE: a node lives while the kernel holds lookups on it
 * (nlookup, dropped by forget) or something holds a reference (a child,
 * a handle, a request in flight); the root is pinned; a node id is
 * never reused; a name taken again unlinks the old node, which lives on
 * by its id; and an underflow of either count is fatal.  The kernel's
 * entry replies are played by adding to nlookup, as fs.c does.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "pufs.h"
#include "tap.h"

/* A child named name under parent, as after one entry reply. */
static struct node *
looked_up(struct node *parent, const char *name)
{
	struct node *n = node_new(parent, name);

	n->nlookup++;
	return n;
}

/* Whether fn dies with SIGABRT (fatalx) in a child process. */
static bool
aborts(void (*fn)(void))
{
	pid_t pid;
	int st;

	fflush(stdout);
	if ((pid = fork()) == 0) {
		/* the fatal message is expected: keep it off the output */
		if (freopen("/dev/null", "w", stderr) == NULL)
			_exit(3);
		fn();
		_exit(0);
	}
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) &&
	    WTERMSIG(st) == SIGABRT;
}

/* A forget of more lookups than the kernel was given. */
static void
forget_too_many(void)
{
	struct node *n = looked_up(node_root(), "over");

	node_forget(n, 2);
}

/* An unref of a node nothing holds. */
static void
unref_too_many(void)
{
	struct node *n = looked_up(node_root(), "under");

	node_unref(n);
}

int
main(void)
{
	struct node *root, *a, *b, *c, *a2;
	uint64_t ida, idb, idc;
	size_t count0;

	node_init();
	root = node_root();
	count0 = node_count();
	tap_ok(count0 == 1 && root->id == FUSE_ROOT_ID && root->refs == 1,
	    "the root exists, pinned, with the root's id");
	node_forget(root, 0);
	tap_ok(node_get(FUSE_ROOT_ID) == root, "a forget of 0 keeps the root");

	a = looked_up(root, "a");
	ida = a->id;
	tap_ok(node_count() == 2 && node_child(root, "a") == a &&
		node_get(ida) == a && root->refs == 2,
	    "a looked-up child is linked and holds its parent");
	a->nlookup++;
	node_forget(a, 1);
	tap_ok(node_get(ida) == a, "one forget of two lookups keeps it");
	node_forget(a, 1);
	tap_ok(node_get(ida) == NULL && node_count() == count0 &&
		root->refs == 1,
	    "the last forget frees it and drops the parent");

	a = looked_up(root, "a");
	tap_ok(a->id > ida, "a node id is never reused (%llu after %llu)",
	    (unsigned long long)a->id, (unsigned long long)ida);
	ida = a->id;
	b = looked_up(a, "b");
	idb = b->id;
	node_forget(a, 1);
	tap_ok(node_get(ida) == a && a->nlookup == 0 && a->refs == 1,
	    "a forgotten directory lives while its child does");
	node_forget(b, 1);
	tap_ok(node_get(idb) == NULL && node_get(ida) == NULL &&
		node_count() == count0,
	    "the child's forget frees both");

	c = looked_up(root, "c");
	idc = c->id;
	node_ref(c); /* a handle */
	node_forget(c, 1);
	tap_ok(node_get(idc) == c, "a reference keeps a forgotten node");
	node_unref(c);
	tap_ok(node_get(idc) == NULL, "and its release frees it");

	c = looked_up(root, "c");
	idc = c->id;
	node_ref(c);
	node_unref(c);
	tap_ok(node_get(idc) == c, "a reference gone keeps a looked-up node");

	a = looked_up(root, "x");
	a2 = looked_up(root, "x");
	tap_ok(node_child(root, "x") == a2 && !a->linked &&
		node_get(a->id) == a,
	    "a name taken again: the old node lives "
	    "on by its id, unlinked");
	node_forget(a, 1);
	tap_ok(node_get(a2->id) == a2 && node_child(root, "x") == a2,
	    "forgetting the old node leaves the new one");
	node_forget(a2, 1);
	node_forget(c, 1);
	tap_ok(node_count() == count0 && root->refs == 1,
	    "everything forgotten: only the root is left");

	tap_ok(aborts(forget_too_many), "a forget underflow is fatal");
	tap_ok(aborts(unref_too_many), "a reference underflow is fatal");
	node_free_all();
	return tap_done();
}
