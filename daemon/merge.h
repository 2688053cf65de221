/*
 * merge.h - the union's merge rules as pure functions (merge.c): plain
 * structs in, plain structs out; no peers, nodes, calls or loop, so
 * t/unit/test-merge.c tests them by table.
 */
#ifndef PUFS_MERGE_H
#define PUFS_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One holder's answer for a name. */
struct merge_hit {
	const void *holder; /* the holder (peer): compared, never read */
	const char *peer;   /* its name, which orders holders */
	const char *uri;    /* its address, for NAME@URI */
	uint32_t export_id;
	bool graft; /* the export's root, grafted at this path */
	bool isdir;
};

/* One name shown in the union, made of some of the hits. */
struct merge_entry {
	char *name; /* NAME or NAME@URI; owned */
	bool isdir;
	bool isvirtual;     /* a directory only because of a graft below */
	bool nlink_unknown; /* several copies, or virtual: nlink is 1 */
	size_t hit;         /* a file's hit; unused for a directory */
	size_t *copies;     /* a directory's hits, primary first; owned */
	size_t ncopies;
};

int merge_hit_cmp(const struct merge_hit *, const struct merge_hit *);
size_t merge_name(const char *base, const struct merge_hit *, size_t n,
    bool virtual, struct merge_entry *out);
void merge_entry_clear(struct merge_entry *);
const char *merge_split_name(const char *name, size_t *baselen);
char *merge_relpath(const char *at, const char *upath);
char *merge_path_of(const char *at, const char *relpath);
bool merge_below(const char *a, const char *dir);

#endif
