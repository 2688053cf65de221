/*
 * journal.h - the holder's numbered record of changed directory entries
 * (journal.c), which answers incremental listings.  Part of the serving
 * side: it knows exports by id and paths relative to their roots only.
 */
#ifndef PUFS_JOURNAL_H
#define PUFS_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One numbered change: entry name of directory dir of an export. */
struct journal_rec {
	uint64_t seq; /* 0: empty slot */
	uint32_t export_id;
	char *dir;   /* relative to the export root; owned */
	char *name;  /* owned */
	uint64_t ns; /* global time of the change (of its last note) */
};

void journal_free(void);
uint64_t journal_seq(void);
void journal_note(uint32_t export_id, const char *path, uint64_t ns);
void journal_start(uint64_t ns);
void journal_lost(uint64_t ns);

/* journal_changes()'s answer: paths into buf (max bytes), and more. */
struct journal_out {
	char *buf;
	size_t max, len;
	uint64_t last;
	bool more, sure;
};

void journal_changes(uint32_t export_id, uint64_t since, uint64_t after,
    struct journal_out *);
int journal_since(uint32_t export_id, const char *dir, uint64_t since,
    char ***names, size_t *n);
int journal_query(const struct journal_rec *ring, size_t size, uint64_t newest,
    uint32_t export_id, const char *dir, uint64_t since, char ***names,
    size_t *n);
void journal_unique(char **names, size_t *n);

#endif
