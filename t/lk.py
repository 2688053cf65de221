# lk.py - lock calls for the lock tests, one per run.
#
#   lk.py try   KIND TYPE START LEN FILE   one non-blocking lock: "ok" or
#                                          the errno's name
#   lk.py hold  KIND TYPE START LEN FILE STATE
#                      wait for the lock, write "locked TIME" to STATE,
#                      then hold it until STATE.release exists, write
#                      "released TIME" and exit (the close drops it);
#                      if the lock fails, "error TIME ERRNO", status 1
#   lk.py getlk TYPE START LEN FILE        F_GETLK: "TYPE START LEN PID"
#                                          (TYPE un, rd, wr)
#   lk.py intr  TYPE START LEN FILE STATE  a blocking F_SETLKW that a
#                      SIGALRM interrupts after 1 s: writes "EINTR" (or
#                      "granted") to STATE, keeps the file open until
#                      STATE.release exists, then exits
#   lk.py sql   DB N TAG   N write transactions (rollback journal), each
#                      inserting one row tagged TAG; prints the count
#   lk.py query DB SQL...  each statement in turn; prints the rows
#   lk.py rmw   FILE N KIND  N times, on one open file: a write lock of
#                      the whole file (KIND posix or flock), read the
#                      number the file holds, write it plus one, unlock;
#                      prints the last number written
#   lk.py put   FILE TEXT STATE  on one open file: a write lock of the
#                      whole file, TEXT written at 0, unlock; "written"
#                      in STATE; the file stays open until STATE.release
#                      exists
#   lk.py get   FILE   a read lock of the whole file (waits), then prints
#                      the file's first line
#   lk.py many  N FILE STATE   N threads, each with its own open file
#                      description, wait for an OFD write lock of the
#                      whole file; "waiting" in STATE once all are
#                      started; each drops its lock at once; "done N"
#                      when all had it
#
# KIND is posix (fcntl, the process's locks), ofd (open file description
# locks) or flock; TYPE rd, wr or un; LEN 0 is to the end of the file.
import errno, fcntl, os, signal, struct, sys, time

def name(e):
    return errno.errorcode.get(e.errno, str(e))

TYPES = {'rd': fcntl.F_RDLCK, 'wr': fcntl.F_WRLCK, 'un': fcntl.F_UNLCK}
F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 36, 37, 38

def flock_struct(t, start, length):
    # struct flock on x86-64 and arm64: short, short, off_t, off_t, pid_t
    return struct.pack('hhqqi4x', t, os.SEEK_SET, start, length, 0)

def lock(fd, kind, t, start, length, wait):
    if kind == 'flock':
        op = {'rd': fcntl.LOCK_SH, 'wr': fcntl.LOCK_EX, 'un': fcntl.LOCK_UN}[t]
        fcntl.flock(fd, op | (0 if wait else fcntl.LOCK_NB))
    elif kind == 'ofd':
        fcntl.fcntl(fd, F_OFD_SETLKW if wait else F_OFD_SETLK,
                    flock_struct(TYPES[t], start, length))
    else:
        fcntl.fcntl(fd, fcntl.F_SETLKW if wait else fcntl.F_SETLK,
                    flock_struct(TYPES[t], start, length))

def openf(path, t):
    return os.open(path, os.O_RDWR if t == 'wr' else os.O_RDONLY)

def put(path, text):
    with open(path + '.tmp', 'w') as f:
        f.write(text + '\n')
    os.rename(path + '.tmp', path)

def wait_release(state):
    while not os.path.exists(state + '.release'):
        time.sleep(0.01)

cmd = sys.argv[1]
if cmd == 'try':
    kind, t, start, length, path = sys.argv[2:7]
    fd = openf(path, t)
    try:
        lock(fd, kind, t, int(start), int(length), False)
        print('ok')
    except OSError as e:
        print(name(e))
elif cmd == 'hold':
    kind, t, start, length, path, state = sys.argv[2:8]
    try:
        fd = openf(path, t)
    except OSError as e:
        put(state, 'error %.6f %s' % (time.time(), name(e)))
        sys.exit(1)
    put(state, 'opened %.6f' % time.time())
    try:
        lock(fd, kind, t, int(start), int(length), True)
    except OSError as e:
        put(state, 'error %.6f %s' % (time.time(), name(e)))
        sys.exit(1)
    put(state, 'locked %.6f' % time.time())
    wait_release(state)
    t1 = time.time()
    os.close(fd)
    put(state, 'released %.6f' % t1)
elif cmd == 'getlk':
    t, start, length, path = sys.argv[2:6]
    fd = openf(path, t)
    r = fcntl.fcntl(fd, fcntl.F_GETLK,
                    flock_struct(TYPES[t], int(start), int(length)))
    lt, wh, ls, ll, lp = struct.unpack('hhqqi4x', r)
    names = {fcntl.F_RDLCK: 'rd', fcntl.F_WRLCK: 'wr', fcntl.F_UNLCK: 'un'}
    print(names[lt], ls, ll, lp)
elif cmd == 'intr':
    t, start, length, path, state = sys.argv[2:7]

    class Interrupted(Exception):
        pass

    def alarm(sig, frame):
        raise Interrupted()
    signal.signal(signal.SIGALRM, alarm)
    fd = openf(path, t)
    signal.alarm(1)
    try:
        lock(fd, 'posix', t, int(start), int(length), True)
        signal.alarm(0)
        put(state, 'granted')
    except Interrupted:
        put(state, 'EINTR')
    wait_release(state)
    os.close(fd)
elif cmd == 'sql':
    import sqlite3
    db, n, tag = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    c = sqlite3.connect(db, timeout=60, isolation_level=None)
    c.execute('PRAGMA journal_mode=DELETE')
    for i in range(n):
        c.execute('BEGIN IMMEDIATE')
        c.execute('INSERT INTO t(tag, i) VALUES (?, ?)', (tag, i))
        c.execute('COMMIT')
    print(c.execute('SELECT count(*) FROM t WHERE tag = ?',
                    (tag,)).fetchone()[0])
elif cmd == 'many':
    import threading
    n, path, state = int(sys.argv[2]), sys.argv[3], sys.argv[4]
    got = []

    def one():
        fd = os.open(path, os.O_RDWR)
        lock(fd, 'ofd', 'wr', 0, 0, True)
        got.append(1)
        lock(fd, 'ofd', 'un', 0, 0, False)
        os.close(fd)
    ts = [threading.Thread(target=one) for i in range(n)]
    for t in ts:
        t.start()
    put(state, 'waiting')
    for t in ts:
        t.join()
    put(state, 'done %d' % len(got))
elif cmd == 'put':
    path, text, state = sys.argv[2:5]
    fd = os.open(path, os.O_RDWR)
    lock(fd, 'posix', 'wr', 0, 0, True)
    os.pwrite(fd, text.encode() + b'\n', 0)
    lock(fd, 'posix', 'un', 0, 0, False)
    put(state, 'written')
    wait_release(state)
    os.close(fd)
elif cmd == 'get':
    fd = os.open(sys.argv[2], os.O_RDONLY)
    lock(fd, 'posix', 'rd', 0, 0, True)
    print(os.pread(fd, 4096, 0).decode().split('\n')[0])
    os.close(fd)
elif cmd == 'query':
    import sqlite3
    c = sqlite3.connect(sys.argv[2], timeout=60)
    for q in sys.argv[3:]:
        for row in c.execute(q):
            print(*row)
    c.commit()
elif cmd == 'rmw':
    path, n, kind = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    fd = os.open(path, os.O_RDWR)
    for i in range(n):
        lock(fd, kind, 'wr', 0, 0, True)
        v = int(os.pread(fd, 64, 0).decode().strip() or '0') + 1
        os.pwrite(fd, b'%20d\n' % v, 0)
        lock(fd, kind, 'un', 0, 0, False)
    os.close(fd)
    print(v)
else:
    sys.exit('lk.py: unknown command ' + cmd)
