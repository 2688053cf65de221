/*
 * fs.h - the FUSE side's private header, one section per file: parked
 * requests and what every handler shares (fsop.c), create-like requests
 * and placement (place.c), namespace changes (change.c), attributes
 * (attr.c), open files (file.c), directories (dir.c), extended
 * attributes (xattr.c), the notifier (notify.c) and the channel's own
 * I/O (kernel.c).  The data path (io.c) is in pufs.h.  The session
 * (fs.c) uses them all and nothing here calls it.
 */
#ifndef PUFS_FS_H
#define PUFS_FS_H

#include <sys/statvfs.h>

#include <fuse_lowlevel.h>

#include "pufs.h"

/* fsop.c */

enum fsop_state {
	FS_NEW,     /* parked, not stepped yet */
	FS_CHECK,   /* is the name free in the merged directory? */
	FS_PLACE,   /* choose the holder */
	FS_MAKE,    /* create on it */
	FS_RESOLVE, /* unlink, rmdir, rename: what are the names? */
	FS_ACT,     /* send the change to every holder */
	FS_STATE_MAX
};

/* A parked request: everything a later step needs, copied. */
struct fsop {
	fuse_req_t req;
	enum fsop_state state; /* changed only by fsop_set_state() */
	uint8_t type;          /* PROTO_MKDIR, PROTO_RENAME, ... */
	struct node *dir;      /* parent (holds a ref) */
	struct node *dir2;     /* rename/link target parent (ref) */
	struct node *node;     /* object (ref) */
	char *name, *name2;    /* as the kernel gave them */
	char *base;            /* name without "@URI" */
	struct peer *pin;
	mode_t mode;
	dev_t rdev;
	int flags;
	char *target; /* symlink target */
	struct fuse_file_info fi;
	struct entry src, dst;
	bool have_src, have_dst;
	struct copy *cands; /* placement candidates */
	size_t ncands;
	struct copy chosen;
	uint64_t best;
	unsigned pending;
	int error;
	struct proto_attr attr;
	bool have_attr;
	bool checked_empty; /* rmdir: every copy was seen empty */
	bool cloned;        /* dir2's path was cloned onto the source's */
	struct statvfs sv;  /* statfs sum */
	uint64_t start_us;  /* loop_mono_us() when parked, for latency */
	uint64_t forgets;   /* lookup: fs_forgets(dir) when it began */
};

struct fsop *fsop_new(fuse_req_t, uint8_t type);
int fsop_node(fuse_req_t, fuse_ino_t, uint8_t type, struct fsop **);
void fsop_free(struct fsop *);
void fsop_done(struct fsop *, int error);
void fsop_set_state(struct fsop *, enum fsop_state);
void fsop_node_stat(const struct node *, struct stat *);
double fsop_attr_given(struct node *);
void fsop_fill_stat(const struct proto_attr *, uint64_t ino, struct stat *);
void fsop_entry_param(struct node *, struct fuse_entry_param *);
void fsop_reply_entry(fuse_req_t, struct node *);
struct node *fsop_inode(fuse_ino_t);
int fsop_dir_node(fuse_ino_t, struct node **);
char *fsop_relpath(struct node *, struct peer *, uint32_t export_id);
int fsop_name_free(int error);
struct call *fsop_call(struct node *, uint8_t type, void (*cb)(struct call *),
    void *arg, int *err);
struct call *fsop_call_flags(struct node *, uint8_t type, uint32_t flags,
    void (*cb)(struct call *), void *arg, int *err);
void fsop_root_attr(struct node *);
int fsop_simple(fuse_req_t, fuse_ino_t, uint8_t type, void (*cb)(struct call *),
    struct call **out);
void fsop_err_cb(struct call *);

/* place.c */

void place_mknod(fuse_req_t, fuse_ino_t parent, const char *name, mode_t,
    dev_t rdev);
void place_mkdir(fuse_req_t, fuse_ino_t parent, const char *name, mode_t);
void place_symlink(fuse_req_t, const char *link, fuse_ino_t parent,
    const char *name);
void place_create(fuse_req_t, fuse_ino_t parent, const char *name, mode_t,
    struct fuse_file_info *);
/* change.c */

void change_unlink(fuse_req_t, fuse_ino_t parent, const char *name);
void change_rmdir(fuse_req_t, fuse_ino_t parent, const char *name);
void change_rename(fuse_req_t, fuse_ino_t parent, const char *name,
    fuse_ino_t newparent, const char *newname, unsigned int flags);
void change_link(fuse_req_t, fuse_ino_t, fuse_ino_t newparent,
    const char *newname);

/* attr.c */

void attr_get(fuse_req_t, fuse_ino_t, struct fuse_file_info *);
void attr_set(fuse_req_t, fuse_ino_t, struct stat *, int to_set,
    struct fuse_file_info *);

/* file.c */

void file_open(fuse_req_t, fuse_ino_t, struct fuse_file_info *);
void file_read(fuse_req_t, fuse_ino_t, size_t size, off_t off,
    struct fuse_file_info *);
void file_write(fuse_req_t, fuse_ino_t, const char *buf, size_t size, off_t off,
    struct fuse_file_info *);
void file_flush(fuse_req_t, fuse_ino_t, struct fuse_file_info *);
void file_release(fuse_req_t, fuse_ino_t, struct fuse_file_info *);
void file_fsync(fuse_req_t, fuse_ino_t, int datasync, struct fuse_file_info *);
void file_fallocate(fuse_req_t, fuse_ino_t, int mode, off_t offset,
    off_t length, struct fuse_file_info *);
void file_lseek(fuse_req_t, fuse_ino_t, off_t off, int whence,
    struct fuse_file_info *);
void file_copy_file_range(fuse_req_t, fuse_ino_t ino_in, off_t off_in,
    struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
    struct fuse_file_info *fi_out, size_t len, int flags);

/* dir.c */

void dir_open(fuse_req_t, fuse_ino_t, struct fuse_file_info *);
void dir_readdir(fuse_req_t, fuse_ino_t, size_t size, off_t off,
    struct fuse_file_info *);
void dir_readdirplus(fuse_req_t, fuse_ino_t, size_t size, off_t off,
    struct fuse_file_info *);
void dir_release(fuse_req_t, fuse_ino_t, struct fuse_file_info *);
void dir_fsync(fuse_req_t, fuse_ino_t, int datasync, struct fuse_file_info *);
void dir_forgotten(struct node *dir);
void dir_free_all(void);
void dir_init(uint64_t capable);

/* xattr.c */

void xattr_set(fuse_req_t, fuse_ino_t, const char *name, const char *value,
    size_t size, int flags);
void xattr_get(fuse_req_t, fuse_ino_t, const char *name, size_t size);
void xattr_list(fuse_req_t, fuse_ino_t, size_t size);
void xattr_remove(fuse_req_t, fuse_ino_t, const char *name);

/* lock.c */

void lock_getlk(fuse_req_t, fuse_ino_t, struct fuse_file_info *,
    struct flock *);
void lock_setlk(fuse_req_t, fuse_ino_t, struct fuse_file_info *, struct flock *,
    int sleep);
void lock_flock(fuse_req_t, fuse_ino_t, struct fuse_file_info *, int op);
int lock_flush(fuse_req_t, struct handle *, uint64_t owner);
void lock_release(struct handle *);

/* notify.c */

void notify_start(struct fuse_session *);
int notify_data_now(uint64_t ino);
void notify_inode(uint64_t ino, int64_t off, int64_t len);
void notify_entry(uint64_t parent, const char *name);
void notify_inval(struct node *, int64_t off);
void notify_listing(struct node *dir);
void notify_attr_now(struct node *);
void notify_links(struct node *);
void notify_other_name(struct node *);
uint64_t notify_seq(void);
void notify_wait(uint64_t seq);
bool notify_running(void);
void notify_stop(void);
bool notify_exited(void);
void notify_join(void);
bool notify_negative(struct node *dir, const char *name, double timeout);
void notify_appeared_name(struct node *dir, const char *name);
void notify_appeared_dir(struct node *dir);
void notify_appeared_all(void);

/* kernel.c */

int kernel_attach(struct fuse_session *, const char *mountpoint);
bool kernel_kill_suidgid(void);
uint32_t kernel_readahead(void);
void kernel_abort(void);
void kernel_free(void);

#endif
