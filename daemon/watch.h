/*
 * watch.h - inotify on our exports (watch.c): changes made on disk by
 * local programs go to the serving side's change sink (export.h).  The
 * disk workers add watches as they serve; events are read on the loop.
 */
#ifndef PUFS_WATCH_H
#define PUFS_WATCH_H

#include <stdint.h>

struct export_ctx;

void watch_init(const struct export_ctx *);
void watch_free(void);
void watch_add(uint32_t export_id, const char *path, int dirfd);
uint64_t watch_since(uint32_t export_id, const char *path);

#endif
