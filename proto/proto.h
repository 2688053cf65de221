/*
 * proto.h - the pufs wire protocol: message structures, encoders and
 * bounds-checked decoders.  Pure code: no I/O, no libfuse, no sockets.
 *
 * The same structures are the daemon's internal request representation:
 * a request to the local export backend and a request to a remote peer
 * are one struct proto_req, and both answer with one struct proto_rep.
 * proto/PROTOCOL.md is the normative description of the bytes.
 *
 * Every object is named by (export id, path relative to that export's
 * root).  Paths never start with '/'; "" is the export root.  Creating
 * operations name the parent in `path` and the new entry in `name`.
 * Open files are named by the holder's file handle `fh`.
 *
 * Numbers on the wire are little-endian.  Mode bits, open flags, errno
 * values and the like are Linux's (pufs peers are Linux machines).
 */
#ifndef PUFS_PROTO_H
#define PUFS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION 1
#define PROTO_MAGIC 0x53465550u      /* "PUFS" little-endian */
#define PROTO_HDR_LEN 16             /* length, type, flags, id */
#define PROTO_FLAG_REPLY 0x01        /* header flags: a reply */
#define PROTO_FLAG_CRED 0x02         /* a request: credentials follow */
#define PROTO_MAX_FRAME (32u << 20)  /* whole frame, header incl. */
#define PROTO_MAX_DATA (16u << 20)   /* read/write payload */
#define PROTO_MAX_PATH 4096          /* bytes incl. NUL */
#define PROTO_MAX_NAME 256           /* bytes incl. NUL */
#define PROTO_MAX_XATTR 65536        /* xattr value or list */
#define PROTO_MAX_DIRENTS (1u << 20) /* entries in one reply frame */
#define PROTO_MAX_EXPORTS 256        /* exports announced in hello */
#define PROTO_MAX_GROUPS 256         /* supplementary groups of a caller */

enum proto_type {
	/* stream control */
	PROTO_HELLO = 1, /* handshake: proto_hello both ways */
	PROTO_PING,      /* keep-alive, round-trip measurement
			    -> value = responder's clock or 0 */
	PROTO_BYE,       /* graceful leave */
	/* objects by path */
	PROTO_STAT,        /* path [fh] -> attr (fh 0 = none) */
	PROTO_SETATTR,     /* path [fh] valid mode uid gid
			      offset = new size, atime mtime -> attr */
	PROTO_READLINK,    /* path -> data (target, no NUL) */
	PROTO_MKNOD,       /* path/name mode rdev -> attr */
	PROTO_MKDIR,       /* path/name mode -> attr */
	PROTO_SYMLINK,     /* path/name data=target -> attr */
	PROTO_LINK,        /* path -> path2/name2 -> attr */
	PROTO_UNLINK,      /* path/name */
	PROTO_RMDIR,       /* path/name */
	PROTO_RENAME,      /* path/name -> path2/name2, flags */
	PROTO_OPEN,        /* path flags -> fh attr */
	PROTO_CREATE,      /* path/name mode flags -> fh attr */
	PROTO_READ,        /* fh offset length -> data */
	PROTO_WRITE,       /* fh offset data -> value = bytes written */
	PROTO_RELEASE,     /* fh */
	PROTO_FSYNC,       /* fh flags(1 = datasync) */
	PROTO_FSYNCDIR,    /* path flags(1 = datasync) */
	PROTO_READDIR,     /* path [fh offset offset2] -> fh value ents flags
			    * (incremental listings, below) */
	PROTO_STATFS,      /* path -> statfs */
	PROTO_ACCESS,      /* path flags = mask */
	PROTO_FALLOCATE,   /* fh flags = mode, offset, length */
	PROTO_SETXATTR,    /* path name = xattr name, data, flags */
	PROTO_GETXATTR,    /* path name length(0 = size only) -> data|value */
	PROTO_LISTXATTR,   /* path length(0 = size only) -> data|value */
	PROTO_REMOVEXATTR, /* path name */
	PROTO_COPY_RANGE,  /* fh offset -> fh2 offset2, length -> value */
	PROTO_LSEEK,       /* fh offset flags = whence -> value */
	/* 31 is WRITE_KILL on the wire (PROTO_WIRE_WRITE_KILL), a WRITE */
	PROTO_REPLACE = 32, /* path/name mode atime mtime data
			     * -> path2/name2, flags -> attr (caps) */
	/* locks (PROTO_CAP_LOCKS) */
	PROTO_GETLK,    /* fh fh2 = owner, offset..offset2, flags -> lock */
	PROTO_SETLK,    /* fh fh2 = owner, offset..offset2, flags -> attr */
	PROTO_LKCANCEL, /* offset = id of a waiting SETLK of ours */
	/* lock leases (PROTO_CAP_LOCK_LEASE) */
	PROTO_LEASE,    /* fh: answered when the holder wants its locks back */
	PROTO_LKRETURN, /* offset = id of the LEASE answered: given back */
	/* replicated directories (PROTO_CAP_CLUSTER) */
	PROTO_CLUSTER = 40, /* path = cluster name, flags = our replica's
			     * state, offset2 = PROTO_CLUSTER_* ask
			     * -> value = the other's state */
	PROTO_CHANGES,      /* export, offset = since (global ns), offset2
			     * = after this change number -> data = paths,
			     * value = last number, flags = PROTO_CHANGES_* */
	PROTO_SUMS,         /* export path, offset, length -> value = size,
			     * data = a PROTO_SUM_LEN digest per block */
	PROTO_TYPE_MAX
};

/* proto_req.valid bits for PROTO_SETATTR. */
#define PROTO_SET_MODE 0x01
#define PROTO_SET_UID 0x02
#define PROTO_SET_GID 0x04
#define PROTO_SET_SIZE 0x08
#define PROTO_SET_ATIME 0x10
#define PROTO_SET_MTIME 0x20
#define PROTO_SET_ATIME_NOW 0x40
#define PROTO_SET_MTIME_NOW 0x80
#define PROTO_SET_KILL_SUIDGID 0x100 /* then clear set-ID bits (caps) */
#define PROTO_SET_ALL 0x1ff

/*
 * In flags of OPEN (beside open(2)'s: with O_TRUNC) and of WRITE (which
 * goes as PROTO_WIRE_WRITE_KILL on the wire): clear the set-ID bits too.
 */
#define PROTO_KILL_SUIDGID 0x80000000u
#define PROTO_WIRE_WRITE_KILL 31 /* the type byte of such a WRITE */

struct proto_time {
	int64_t sec;
	uint32_t nsec; /* < 1e9 */
};

/* Attributes of an object, as the holder's lstat(2) saw them. */
struct proto_attr {
	uint64_t dev;
	uint64_t ino;
	uint32_t mode;
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	uint64_t rdev;
	uint64_t size;
	uint64_t blocks; /* 512-byte units */
	struct proto_time atime;
	struct proto_time mtime;
	struct proto_time ctime;
};

struct proto_dirent {
	const char *name; /* NUL-terminated, no '/', not "." or ".." */
	struct proto_attr attr;
};

struct proto_statfs {
	uint64_t bsize, frsize, blocks, bfree, bavail, files, ffree, favail;
	uint64_t namemax;
};

/* One export as a peer announces it. */
struct proto_export {
	uint32_t id; /* the peer's export id used in requests */
	const char *name;
	const char *at; /* union path, "/" or "/a/b" */
	bool read_only;
};

/* Handshake body, sent by both ends of a stream. */
struct proto_hello {
	uint32_t magic;   /* PROTO_MAGIC */
	uint32_t version; /* PROTO_VERSION */
	uint64_t caps;    /* capability bits, PROTO_CAP_* */
	const char *name; /* peer name */
	const char *uri;  /* contact address "HOST:PORT" / "[ADDR]:PORT" */
	uint64_t uptime_ms;
	uint64_t boot_id; /* random per start; tells restarts apart */
	uint32_t nexports;
	struct proto_export *exports;
};

/*
 * Whose request it is (capability PROTO_CAP_CRED, PROTOCOL.md section
 * 4.1): the uid, gid and supplementary groups of the process that made
 * it, for a holder with `identity = caller` to act as.  A frame with
 * PROTO_FLAG_CRED carries them after its body; only the types of
 * proto_type_cred() do.  Without set, the request says nothing of it.
 */
struct proto_cred {
	bool set;
	uint32_t uid, gid;
	uint32_t ngroups; /* <= PROTO_MAX_GROUPS */
	uint32_t groups[PROTO_MAX_GROUPS];
};

/*
 * Whether a request of type acts on the holder's files for its caller,
 * and so carries the caller's credentials: opening, creating, removing,
 * renaming, linking, changing attributes, extended attributes, access.
 * Looking (STAT, READDIR, READLINK, STATFS) fills caches every local
 * user shares and goes without; so does all I/O through a handle, which
 * its OPEN or CREATE allowed.
 */
bool proto_type_cred(int type);

/*
 * A request.  Which fields a type uses is listed next to the type above
 * and in PROTOCOL.md; the others are zero on encode and ignored.
 * Pointers are borrowed: after decode they point into the frame buffer.
 */
struct proto_req {
	uint8_t type; /* enum proto_type */
	uint64_t id;  /* chosen by the sender; echoed in the reply */
	uint32_t export_id;
	const char *path; /* relative to the export root; "" = root */
	const char *name; /* a single component, or an xattr name */
	uint32_t export2; /* LINK, RENAME destination */
	const char *path2;
	const char *name2;
	uint64_t fh, fh2;
	uint64_t offset, offset2, length;
	uint32_t mode;
	uint32_t flags;    /* per type: open flags, rename flags, ... */
	uint32_t uid, gid; /* SETATTR */
	uint64_t rdev;
	uint32_t valid; /* SETATTR: PROTO_SET_* */
	struct proto_time atime, mtime;
	const void *data; /* WRITE, SYMLINK target, SETXATTR value */
	size_t datalen;
	struct proto_hello hello; /* HELLO */
	struct proto_cred cred;   /* the caller; see proto_type_cred() */
};

/*
 * Incremental listings.  A READDIR request may carry the checkpoint of an
 * earlier answer from the same holder: fh = the holder's boot id,
 * offset = the checkpoint's global time (ns), offset2 = its change
 * number; fh 0 asks for the whole listing.  The reply carries its own
 * checkpoint (fh = global time ns, value = change number) and flags: with
 * PROTO_LIST_DELTA, ents holds only the entries added or changed since the
 * checkpoint, and the names removed since, as entries whose attr.mode is
 * 0; without it, ents is the whole listing.  A holder answers in full
 * whenever it cannot be sure of the delta.
 */
#define PROTO_LIST_DELTA 0x01
#define PROTO_LIST_MORE 0x02 /* a page; more pages follow */
#define PROTO_LIST_FLAGS (PROTO_LIST_DELTA | PROTO_LIST_MORE)

/*
 * Paged listings (capability PROTO_CAP_LIST_PAGES, PROTOCOL.md READDIR):
 * a READDIR answer too large for one frame travels as several reply
 * frames with the request's id, each but the last with PROTO_LIST_MORE,
 * all with the same checkpoint and PROTO_LIST_DELTA bit.  The requester
 * joins their entries, at most PROTO_MAX_LISTING in all.
 */
#define PROTO_CAP_LIST_PAGES 0x01     /* hello caps bit */
#define PROTO_MAX_LISTING (16u << 20) /* entries of a paged listing */

/*
 * Set-ID bits cleared by the holder for a requester whose caller lacks
 * CAP_FSETID (PROTOCOL.md section 6): WRITE_KILL, SETATTR's
 * SET_KILL_SUIDGID and OPEN's PROTO_KILL_SUIDGID.
 */
#define PROTO_CAP_KILL_SUIDGID 0x02

/*
 * REPLACE (PROTOCOL.md): a small file made whole under a temporary name,
 * made durable and renamed over another name, in one request.
 */
#define PROTO_CAP_REPLACE 0x04
/* Requests may carry their caller's credentials (struct proto_cred). */
#define PROTO_CAP_CRED 0x08
/*
 * The parent directory's attributes after a change (PROTOCOL.md section
 * 6): a MKNOD, MKDIR, SYMLINK, CREATE, LINK (path2), UNLINK or RMDIR
 * reply without an error may carry them after its other fields, said by
 * the header flag PROTO_FLAG_DIR_ATTR, so the requester need not ask.
 */
#define PROTO_CAP_DIR_ATTR 0x10
#define PROTO_FLAG_DIR_ATTR 0x04 /* header flags: dir_attr follows */
/*
 * Locks held on the holder (PROTOCOL.md, GETLK): GETLK, SETLK and
 * LKCANCEL.  A lock request names a handle, an opaque lock owner (fh2),
 * an inclusive byte range offset..offset2 (offset2 PROTO_LK_EOF: to the
 * end of the file, however long it grows) and in flags a type and
 * modifiers.  The types are Linux's F_RDLCK, F_WRLCK and F_UNLCK.
 */
#define PROTO_CAP_LOCKS 0x20
/*
 * A granted lock's change numbers (PROTOCOL.md, SETLK): a SETLK reply
 * without an error may carry, after its attributes, the holder's change
 * number of the file (lock_gen) and the number since which only the
 * requester changed it (lock_since), said by the header flag
 * PROTO_FLAG_LOCK_GEN, so the requester keeps what it caches of the
 * file when nobody else wrote it.
 */
#define PROTO_CAP_LOCK_GEN 0x40
#define PROTO_FLAG_LOCK_GEN 0x08 /* header flags: lock_gen follows */
/*
 * Lock leases (PROTOCOL.md, LEASE): a holder may lend a file's POSIX
 * locks to the one peer that locks it (a SETLK with PROTO_LK_BORROW,
 * answered with PROTO_FLAG_LENT); the borrower then decides them itself
 * until the holder answers its LEASE, and gives them back as SETLKs
 * with PROTO_LK_RETURN, then LKRETURN.
 */
#define PROTO_CAP_LOCK_LEASE 0x80
#define PROTO_FLAG_LENT 0x10 /* header flags: decide it yourself */
/*
 * The object's attributes after a change through it (PROTOCOL.md,
 * WRITE_ATTR and UNLINK_ATTR): a WRITE reply without an error may go
 * as WRITE_ATTR, with the file's attributes after the write and before
 * it; an UNLINK reply as UNLINK_ATTR, with those of the object after,
 * when another name still links it.  The requester keeps what it knows
 * of the file without asking again.
 */
#define PROTO_CAP_CHANGE_ATTR 0x400
#define PROTO_WIRE_WRITE_ATTR 38  /* the type byte of such a WRITE reply */
#define PROTO_WIRE_UNLINK_ATTR 39 /* and of such an UNLINK reply */
/*
 * Replicated directories (PROTOCOL.md, CLUSTER): a peer tells another
 * the state of its replica of a cluster, and learns the other's.
 * States are PROTO_CLUSTER_NONE (no replica), _RESYNC (live, being
 * brought up to date: written to, never read from) and _SYNC; offset2
 * PROTO_CLUSTER_DESYNC tells the receiver that a write to its replica
 * failed, so that it resyncs.
 */
#define PROTO_CAP_CLUSTER 0x100
/*
 * FSYNC in order (PROTOCOL.md, FSYNC): the holder runs an FSYNC only
 * after every request that changes the file through the same handle and
 * came before it on the stream, so the requester may send it right
 * behind its WRITEs instead of waiting for their answers.
 */
#define PROTO_CAP_FSYNC_ORDER 0x200
/*
 * SETATTR in order (PROTOCOL.md, SETATTR): a SETATTR through a handle
 * runs, as an FSYNC does, only after the requests that change the file
 * through that handle and came before it, so the requester may send it
 * right behind its WRITEs.
 */
#define PROTO_CAP_SETATTR_ORDER 0x800
#define PROTO_CLUSTER_NONE 0
#define PROTO_CLUSTER_RESYNC 1
#define PROTO_CLUSTER_SYNC 2
#define PROTO_CLUSTER_DESYNC 1 /* offset2 */
/*
 * A replica's resync asks another for what its journal holds (CHANGES):
 * the paths of entries of an export changed since a global time, after
 * a change number, NUL-terminated in data, as many as fit one frame
 * (PROTO_CHANGES_MORE: ask again after value).  PROTO_CHANGES_SURE says
 * the journal holds every change since that time; without it the asker
 * compares everything.  SUMS gives the digests of a file's blocks of
 * PROTO_SUM_BLOCK bytes from offset (a multiple of it) for length bytes,
 * at most PROTO_SUM_MAX blocks, and the file's size.
 */
/*
 * The next record of a CHANGES answer's data at *p (before end): its
 * global time and NUL-terminated path (pointing into the data); *p moves
 * past it.  Returns 1, 0 at the end, -1 for a record cut short or not
 * terminated (the rest cannot be trusted).
 */
int proto_changes_next(const uint8_t **p, const uint8_t *end, uint64_t *ns,
    const char **path);
#define PROTO_CHANGES_SURE 0x01
#define PROTO_CHANGES_MORE 0x02
#define PROTO_SUM_BLOCK (128u << 10)
#define PROTO_SUM_LEN 16
#define PROTO_SUM_MAX 4096
#define PROTO_CAPS \
	(PROTO_CAP_LIST_PAGES | PROTO_CAP_KILL_SUIDGID | PROTO_CAP_REPLACE | \
	    PROTO_CAP_CRED | PROTO_CAP_DIR_ATTR | PROTO_CAP_LOCKS | \
	    PROTO_CAP_LOCK_GEN | PROTO_CAP_LOCK_LEASE | PROTO_CAP_CLUSTER | \
	    PROTO_CAP_FSYNC_ORDER | PROTO_CAP_CHANGE_ATTR | \
	    PROTO_CAP_SETATTR_ORDER)

#define PROTO_LK_RDLCK 0
#define PROTO_LK_WRLCK 1
#define PROTO_LK_UNLCK 2
#define PROTO_LK_TYPE 0x3     /* flags: the type */
#define PROTO_LK_WAIT 0x100   /* SETLK: wait until it can be granted */
#define PROTO_LK_FLOCK 0x200  /* a flock(2) lock (whole file), not POSIX */
#define PROTO_LK_BORROW 0x400 /* SETLK: the requester may borrow the file */
#define PROTO_LK_RETURN 0x800 /* SETLK: a lent lock given back */
#define PROTO_LK_FLAGS \
	(PROTO_LK_TYPE | PROTO_LK_WAIT | PROTO_LK_FLOCK | PROTO_LK_BORROW | \
	    PROTO_LK_RETURN)
#define PROTO_LK_EOF INT64_MAX /* offset2: to the end of the file */

/* A lock, as GETLK answers it: the first that conflicts, or F_UNLCK. */
struct proto_lock {
	uint64_t start, end; /* inclusive; end PROTO_LK_EOF: to the end */
	uint32_t type;       /* PROTO_LK_RDLCK, _WRLCK; _UNLCK: none */
	uint32_t pid;        /* 0: held from another peer, or unknown */
};

/* The capabilities a stream must have to carry q (0: none). */
uint64_t proto_req_caps(const struct proto_req *q);

/* Take out of q what a stream without capabilities caps cannot carry. */
void proto_req_fit_caps(struct proto_req *q, uint64_t caps);

/* A reply; id and type echo the request. */
struct proto_rep {
	uint8_t type;
	uint64_t id;
	int32_t error; /* 0, or a negative errno (positive on the wire) */
	struct proto_attr attr;
	uint64_t fh;
	uint64_t value;   /* bytes written, xattr size, offset ... */
	const void *data; /* READ, READLINK, GETXATTR, LISTXATTR */
	size_t datalen;
	struct proto_dirent *ents; /* READDIR; array owned by the rep */
	size_t nents;
	struct proto_statfs statfs;
	struct proto_hello hello;   /* HELLO; exports array owned */
	uint32_t flags;             /* READDIR: PROTO_LIST_* */
	bool has_dir_attr;          /* PROTO_CAP_DIR_ATTR: dir_attr is set */
	struct proto_attr dir_attr; /* the parent directory's, after */
	struct proto_lock lock;     /* GETLK */
	bool has_lock_gen;          /* PROTO_CAP_LOCK_GEN: the two below */
	uint64_t lock_gen;          /* SETLK: the file's change number */
	uint64_t lock_since;        /* changed by the requester alone since */
	bool lent; /* GETLK, SETLK: PROTO_FLAG_LENT, the requester decides */
	bool has_attr; /* PROTO_CAP_CHANGE_ATTR: WRITE, UNLINK */
	struct proto_attr attr_before; /* WRITE: the file's before it */
};

/* Take out of r what a stream without capabilities caps cannot carry. */
void proto_rep_fit_caps(struct proto_rep *r, uint64_t caps);

/* A growable output buffer for encoders. */
struct proto_buf {
	uint8_t *p;
	size_t len, cap;
};

void proto_buf_free(struct proto_buf *);

/*
 * Append one whole frame (length prefix included) to out.  Returns 0, or
 * -EINVAL when a field is out of its limits, -ENOMEM on allocation failure.
 */
int proto_encode_req(const struct proto_req *, struct proto_buf *out);
int proto_encode_rep(const struct proto_rep *, struct proto_buf *out);

/*
 * Append a reply as proto_encode_rep() does, except that a READDIR
 * listing too large for one frame (PROTO_MAX_FRAME, PROTO_MAX_DIRENTS)
 * is appended as pages (above); only for a stream with
 * PROTO_CAP_LIST_PAGES.  Nothing is appended on error.
 */
int proto_encode_rep_paged(const struct proto_rep *, struct proto_buf *out);

/*
 * Where the data of a reply of type without an error starts in its frame
 * (the header, the error, the data's length before it), or 0 when the
 * reply carries other fields.  A reply encoded into an empty buffer of
 * that many bytes plus its data's, which holds the data at that offset
 * already, is encoded in place: the data is not copied.
 */
size_t proto_rep_data_at(uint8_t type);

/*
 * Where the data of a request of type starts in its frame (the header
 * and the fixed fields before it, then its length), or 0 when it has no
 * data or a field of variable length precedes it.  A request encoded
 * into a buffer that holds its data at that offset already is encoded
 * in place: the data is not copied.
 */
size_t proto_req_data_at(uint8_t type);

/*
 * Given the first bytes of a stream, the total length of the frame that
 * starts there: 0 if fewer than 4 bytes are available, -EPROTO if the
 * length is below PROTO_HDR_LEN or above PROTO_MAX_FRAME.
 */
long proto_frame_len(const uint8_t *, size_t);

/* Whether the frame at buf (at least PROTO_HDR_LEN bytes) is a reply. */
bool proto_frame_is_reply(const uint8_t *buf);

/*
 * Decode exactly one whole frame of len bytes.  Every length is checked,
 * strings must be NUL-terminated without inner NULs, names must be single
 * components, and trailing bytes are an error.  Returns 0 or -EPROTO
 * (-ENOMEM on allocation failure).  Pointers in the result point into buf.
 * A decoded reply may own arrays: release them with proto_rep_clear().
 */
int proto_decode_req(const uint8_t *buf, size_t len, struct proto_req *);
int proto_decode_rep(const uint8_t *buf, size_t len, struct proto_rep *);

/*
 * Free the arrays a decode allocated (rep: ents, hello.exports; req:
 * hello.exports) and reset their pointers and counts; other fields stay.
 * Only for decoded structures: an encoder's arrays belong to the caller.
 * Harmless on a zeroed structure or after a failed decode.
 */
void proto_rep_clear(struct proto_rep *);
void proto_req_clear(struct proto_req *);

/* The name of a type for logs ("stat", "read"; "unknown"). */
const char *proto_type_name(int type);

/* Whether name is a valid single path component. */
bool proto_name_ok(const char *name);

/*
 * Whether name may name a peer: 1 to 255 bytes, no '/', no control
 * character (below 0x20, or 0x7f).  Receivers refuse a HELLO or a
 * datagram with any other name.
 */
bool proto_peer_name_ok(const char *name);

/*
 * Whether uri is a contact address: HOST:PORT or [ADDR]:PORT, 1 to 255
 * bytes, HOST without ':', '/', '[', ']' or control characters, PORT a
 * decimal number 1..65535.  Syntax only: whether HOST is numeric is the
 * resolver's business.
 */
bool proto_uri_ok(const char *uri);

/* Whether path is a valid relative path: components separated by single
 * '/', none empty, ".", or "..", no leading or trailing '/'; "" is ok. */
bool proto_path_ok(const char *path);

#endif
