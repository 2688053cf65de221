/*
 * keygen.c - `pufs keygen FILE`: write a new union secret.
 *
 * 32 random bytes from the kernel, base64 on one line, in a file made
 * with mode 0600 that must not exist yet: overwriting a key by mistake
 * would cut this peer out of its union.  The secret config_validate()
 * reads back is that line without its newline (44 bytes).
 */
#include <sys/random.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "pufs.h"

#define KEYGEN_BYTES 32

int
keygen_main(int argc, char **argv)
{
	unsigned char raw[KEYGEN_BYTES];
	char line[4 * ((KEYGEN_BYTES + 2) / 3) + 2];
	size_t len, off;
	ssize_t n;
	int fd, e;

	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: pufs keygen FILE\n");
		return 2;
	}
	for (off = 0; off < sizeof raw; off += (size_t)n)
		if ((n = getrandom(raw + off, sizeof raw - off, 0)) == -1) {
			if (errno == EINTR) {
				n = 0;
				continue;
			}
			cli_warnx("keygen: getrandom: %s", strerror(errno));
			return 1;
		}
	len = (size_t)EVP_EncodeBlock((unsigned char *)line, raw, sizeof raw);
	explicit_bzero(raw, sizeof raw);
	line[len++] = '\n';
	fd = open(argv[1], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd == -1) {
		cli_warnx("keygen: %s: %s", argv[1], strerror(errno));
		explicit_bzero(line, sizeof line);
		return 1;
	}
	for (off = 0; off < len; off += (size_t)n)
		if ((n = write(fd, line + off, len - off)) == -1 &&
		    errno != EINTR)
			break;
		else if (n == -1)
			n = 0;
	e = off < len ? errno : fsync(fd) == -1 ? errno : 0;
	explicit_bzero(line, sizeof line);
	if (close(fd) == -1 && e == 0)
		e = errno;
	if (e != 0) {
		cli_warnx("keygen: %s: %s", argv[1], strerror(e));
		unlink(argv[1]);
		return 1;
	}
	return 0;
}
