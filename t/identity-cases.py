#!/usr/bin/env python3
#
# identity-cases.py prepare DIR: make DIR (mode 0777) and in it sticky
# (1777) and sg (2777, group 2000), what the cases start from.
# identity-cases.py run DIR [--root-as UID]: permission and ownership
# cases, each done by one of a few users on the files of DIR, one line per
# case ("case: result", the result "ok", an errno name, or an owner and
# mode), then every entry with its owner and mode.  Run as root.  The same
# cases on a local directory and through a pufs mount must print the same
# lines.  --root-as runs the root cases as UID (65534: what root_squash
# makes of root on a holder), for the local side of that comparison.
#
# Users: a (1000, groups 1000), b (1001, groups 1001 2000), c (1002,
# group 1002, groups 2000), root (0).
import errno
import os
import stat
import sys

USERS = {
    'a': (1000, 1000, [1000]),
    'b': (1001, 1001, [1001, 2000]),
    'c': (1002, 1002, [2000]),
    'root': (0, 0, [0]),
}


def owner(p):
    st = os.lstat(p)
    return '%d:%d %o' % (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))


def create(p, mode=0o644):
    os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
    return owner(p)


def mkdir(p, mode=0o755):
    os.mkdir(p, mode)
    return owner(p)


def symlink(p):
    os.symlink('target', p)
    st = os.lstat(p)
    return '%d:%d' % (st.st_uid, st.st_gid)


def write(p):
    fd = os.open(p, os.O_WRONLY)
    os.write(fd, b'x')
    os.close(fd)


def read(p):
    fd = os.open(p, os.O_RDONLY)
    os.read(fd, 1)
    os.close(fd)


def write_then_utime(p):
    """Times set while the bytes just written may still be on their way."""
    fd = os.open(p, os.O_WRONLY)
    try:
        os.write(fd, b'dirty' * 1000)
        os.utime(p, (2, 2))
        return 'mtime %d size %d' % (os.stat(p).st_mtime, os.stat(p).st_size)
    finally:
        os.close(fd)


def setxattr(p):
    os.setxattr(p, 'user.tag', b'v')


def getxattr(p):
    return os.getxattr(p, 'user.tag').decode()


def link(src, dst):
    os.link(src, dst)
    return 'nlink %d' % os.lstat(dst).st_nlink


def access_w(p):
    if not os.access(p, os.W_OK, effective_ids=True):
        raise OSError(errno.EACCES, 'access')


def rmtree_listing(root):
    """Every entry under root with owner and mode, sorted."""
    out = []
    for d, dirs, files in os.walk(root):
        for n in sorted(dirs + files):
            p = os.path.join(d, n)
            out.append('tree %s: %s' % (os.path.relpath(p, root), owner(p)))
    return sorted(out)


# (name, user, function, relative path arguments...)
CASES = [
    ('a creates a file', 'a', create, 'af'),
    ('a makes a directory', 'a', mkdir, 'ad'),
    ('a makes a symlink', 'a', symlink, 'al'),
    ('b writes a 0644 file of a', 'b', write, 'af'),
    ('b truncates a 0644 file of a', 'b', lambda p: os.truncate(p, 0), 'af'),
    ('b asks access W_OK to a 0644 file of a', 'b', access_w, 'af'),
    ('b reads a 0644 file of a', 'b', read, 'af'),
    ('b chmods a file of a', 'b', lambda p: os.chmod(p, 0o666), 'af'),
    ('b chowns a file of a to b', 'b', lambda p: os.chown(p, 1001, -1), 'af'),
    ('b sets times of a file of a', 'b', lambda p: os.utime(p, (1, 1)), 'af'),
    ('b creates in a 0755 directory of a', 'b', create, 'ad/bf'),
    ('b makes a directory in a 0755 directory of a', 'b', mkdir, 'ad/bd'),
    ('a creates in its directory', 'a', create, 'ad/af'),
    ('b unlinks in a 0755 directory of a', 'b', os.unlink, 'ad/af'),
    ('a chmods its file 0600', 'a', lambda p: os.chmod(p, 0o600), 'af'),
    ('b reads a 0600 file of a', 'b', read, 'af'),
    ('a chowns its file to b', 'a', lambda p: os.chown(p, 1001, -1), 'af'),
    ('a chgrps its file to a group not its own', 'a',
     lambda p: os.chown(p, -1, 2000), 'af'),
    ('a chgrps its file to its own group', 'a',
     lambda p: os.chown(p, -1, 1000), 'af'),
    ('a sets times of its file', 'a', lambda p: os.utime(p, (1, 1)), 'af'),
    ('a writes its file and sets its times at once', 'a', write_then_utime,
     'af'),
    ('a hard-links its file', 'a', link, 'af', 'alink'),
    ('b hard-links a 0600 file of a', 'b', link, 'af', 'blink'),
    ('a chmods its directory 0777', 'a', lambda p: os.chmod(p, 0o777), 'ad'),
    ('b makes a directory in a 0777 directory of a', 'b', mkdir, 'ad/bd'),
    ('a removes the directory of b in its directory', 'a', os.rmdir, 'ad/bd'),
    ('b creates a file', 'b', create, 'bg'),
    ('b chgrps its file to its group 2000', 'b',
     lambda p: os.chown(p, -1, 2000), 'bg'),
    ('b chmods its file 0660', 'b', lambda p: os.chmod(p, 0o660), 'bg'),
    ('b tags its file (user.tag)', 'b', setxattr, 'bg'),
    ('a tags a 0660 file of group 2000', 'a', setxattr, 'bg'),
    ('c reads the tag of a 0660 file of group 2000', 'c', getxattr, 'bg'),
    ('a reads the tag of a 0660 file of group 2000', 'a', getxattr, 'bg'),
    ('c writes a 0660 file of group 2000', 'c', write, 'bg'),
    ('a writes a 0660 file of group 2000', 'a', write, 'bg'),
    ('a reads a 0660 file of group 2000', 'a', read, 'bg'),
    ('a creates in a setgid directory of group 2000', 'a', create, 'sg/af'),
    ('a makes a directory in a setgid directory', 'a', mkdir, 'sg/ad'),
    ('a creates in the sticky directory', 'a', create, 'sticky/af'),
    ('b unlinks a file of a in the sticky directory', 'b', os.unlink,
     'sticky/af'),
    ('b renames a file of a in the sticky directory', 'b', os.rename,
     'sticky/af', 'sticky/bf'),
    ('b creates in the sticky directory', 'b', create, 'sticky/bf'),
    ('b renames its file in the sticky directory', 'b', os.rename,
     'sticky/bf', 'sticky/bg'),
    ('a renames over a file of b in the sticky directory', 'a', os.rename,
     'sticky/af', 'sticky/bg'),
    ('a unlinks a file of b in the sticky directory', 'a', os.unlink,
     'sticky/bg'),
    ('a unlinks its file in the sticky directory', 'a', os.unlink,
     'sticky/af'),
    ('b renames a file of a in a 0777 directory', 'b', os.rename, 'al',
     'bl'),
    ('b unlinks a file of a in a 0777 directory', 'b', os.unlink, 'alink'),
    ('root creates a file', 'root', create, 'rf'),
    ('root makes a directory', 'root', mkdir, 'rd'),
    ('root writes a 0600 file of a', 'root', write, 'af'),
    ('root reads a 0600 file of a', 'root', read, 'af'),
    ('root chowns a file of a to b', 'root',
     lambda p: os.chown(p, 1001, 1001), 'af'),
    ('root chmods a file of b', 'root', lambda p: os.chmod(p, 0o600), 'bg'),
    ('root creates in a 2755 directory of a', 'root', create, 'sg/ad/rf'),
    ('root unlinks a file of b in the sticky directory', 'root', os.unlink,
     'sticky/bg'),
]


def run(user, fn, args, root_as):
    """Do fn(*args) as user in a child; its result line."""
    uid, gid, groups = USERS[user]
    if user == 'root' and root_as is not None:
        uid = gid = root_as
        groups = []
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        try:
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            r = fn(*args)
            out = 'ok' if r is None else str(r)
        except OSError as e:
            out = errno.errorcode.get(e.errno, str(e.errno))
        os.write(wfd, out.encode())
        os._exit(0)
    os.close(wfd)
    out = b''
    while True:
        chunk = os.read(rfd, 4096)
        if not chunk:
            break
        out += chunk
    os.close(rfd)
    os.waitpid(pid, 0)
    return out.decode()


def prepare(base):
    for d, mode in (('', 0o777), ('sticky', 0o1777), ('sg', 0o2777)):
        p = os.path.join(base, d)
        os.makedirs(p, exist_ok=True)
        if d == 'sg':
            os.chown(p, -1, 2000)
        os.chmod(p, mode)


def main():
    base = sys.argv[2]
    if sys.argv[1] == 'prepare':
        prepare(base)
        return
    root_as = None
    if len(sys.argv) == 5 and sys.argv[3] == '--root-as':
        root_as = int(sys.argv[4])
    for case in CASES:
        name, user, fn = case[:3]
        args = [os.path.join(base, a) for a in case[3:]]
        print('%s: %s' % (name, run(user, fn, args, root_as)))
    for line in rmtree_listing(base):
        print(line)


main()
