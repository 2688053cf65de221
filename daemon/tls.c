/*
 * tls.c - TLS 1.3 for the streams when [security] encrypt = yes, through
 * libevent's bufferevent_openssl (DESIGN.md, "Encrypted streams").
 *
 * Keyed by an external pre-shared key: HMAC-SHA-256(secret, "pufs tls
 * v1"), offered by the initiator under a fixed identity and found by the
 * acceptor under that identity alone, with TLS_AES_128_GCM_SHA256 and the
 * (EC)DHE key exchange OpenSSL does with a PSK by default, so a stream's
 * keys are not derivable from the secret afterwards.  No certificates:
 * every peer holds the same secret, and a certificate would prove nothing
 * more.  No tickets, no resumption: a stream is long-lived.  The
 * challenge-response of hello.c still runs inside, for the names.
 *
 * The TLS bufferevent is a filter over a plain socket bufferevent (the
 * socket layer): OpenSSL reads and writes records in memory, and the
 * socket layer moves them in large readv() and writev() calls.  On the
 * socket itself OpenSSL made a write for every record (16 KiB) and two
 * reads, and read-ahead there leaves records in OpenSSL that no
 * readable socket brings libevent back for.
 */
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "auth.h"
#include "pufs.h"
#include "stream-int.h"

#define TLS_SUITE "TLS_AES_128_GCM_SHA256"

/* Most plaintext one record holds. */
#define TLS_RECORD (16u << 10)
/*
 * Records queued in the socket layer: OpenSSL stops writing into it
 * above TLS_SOCK_HIGH (the rest waits, unencrypted, in the stream's
 * output, where stream.c's back-pressure sees it) and is called again
 * below TLS_SOCK_LOW; one writev() moves up to TLS_SOCK_HIGH.
 */
#define TLS_SOCK_HIGH (4u << 20)
#define TLS_SOCK_LOW (2u << 20)

static SSL_CTX *tls_ctx;
static SSL_SESSION *tls_psk; /* the key, as a TLS 1.3 session */
static const unsigned char tls_identity[] = "pufs psk v1";
/* stream.c's reader of a socket bufferevent, given at tls_init(). */
static void (*tls_sock_read_more)(struct bufferevent *);
/* The filter's read callback on the socket layer, once it is open. */
static bufferevent_data_cb tls_filter_read;

/* Initiator: offer the key (OpenSSL's psk_use_session callback). */
static int
tls_use_psk(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
    SSL_SESSION **sess)
{
	(void)ssl;
	(void)md;
	SSL_SESSION_up_ref(tls_psk);
	*sess = tls_psk;
	*id = tls_identity;
	*idlen = sizeof tls_identity - 1;
	return 1;
}

/* Acceptor: the key offered under our identity, or none. */
static int
tls_find_psk(SSL *ssl, const unsigned char *id, size_t idlen,
    SSL_SESSION **sess)
{
	(void)ssl;
	*sess = NULL;
	if (idlen != sizeof tls_identity - 1 ||
	    memcmp(id, tls_identity, idlen) != 0)
		return 1; /* not ours: the handshake fails */
	SSL_SESSION_up_ref(tls_psk);
	*sess = tls_psk;
	return 1;
}

/*
 * Make the context and the key's session, if streams are encrypted;
 * read_more reads what else a socket bufferevent's socket holds.
 */
void
tls_init(void (*read_more)(struct bufferevent *))
{
	static const unsigned char aes128gcm[] = { 0x13, 0x01 };
	uint8_t psk[AUTH_KEY_LEN];
	const SSL_CIPHER *cipher;
	SSL *ssl;

	if (!conf->encrypt)
		return;
	tls_sock_read_more = read_more;
	if (conf->key == NULL)
		fatalx("tls: encrypt without a key");
	if ((tls_ctx = SSL_CTX_new(TLS_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(tls_ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(tls_ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_ciphersuites(tls_ctx, TLS_SUITE) != 1 ||
	    SSL_CTX_set_num_tickets(tls_ctx, 0) != 1)
		fatalx("tls: cannot make a TLS 1.3 context");
	SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(tls_ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_psk_use_session_callback(tls_ctx, tls_use_psk);
	SSL_CTX_set_psk_find_session_callback(tls_ctx, tls_find_psk);
	if ((ssl = SSL_new(tls_ctx)) == NULL ||
	    (cipher = SSL_CIPHER_find(ssl, aes128gcm)) == NULL)
		fatalx("tls: no %s in this OpenSSL", TLS_SUITE);
	SSL_free(ssl);
	auth_subkey(conf->key, conf->key_len, AUTH_LABEL_TLS, psk);
	if ((tls_psk = SSL_SESSION_new()) == NULL ||
	    SSL_SESSION_set1_master_key(tls_psk, psk, sizeof psk) != 1 ||
	    SSL_SESSION_set_cipher(tls_psk, cipher) != 1 ||
	    SSL_SESSION_set_protocol_version(tls_psk, TLS1_3_VERSION) != 1)
		fatalx("tls: cannot make the key's session");
	OPENSSL_cleanse(psk, sizeof psk);
}

/*
 * A TLS bufferevent around fd (-1: to be connected, through
 * tls_socket()), as the initiator or the acceptor; NULL when streams are
 * not encrypted.  Freeing it frees the socket layer and closes fd.  Its
 * callbacks are deferred: OpenSSL reads into its input when reading is
 * enabled again, and writes when a frame is queued, so they would
 * otherwise run inside stream.c's own calls.
 */
struct bufferevent *
tls_bufferevent(int fd, bool outbound)
{
	struct bufferevent *sock, *bev;
	SSL *ssl;

	if (tls_ctx == NULL)
		return NULL;
	if ((ssl = SSL_new(tls_ctx)) == NULL ||
	    (sock = bufferevent_socket_new(loop_base, fd,
		 BEV_OPT_CLOSE_ON_FREE)) == NULL)
		fatalx("tls: cannot make a session");
	bufferevent_set_max_single_write(sock, TLS_SOCK_HIGH);
	bufferevent_setwatermark(sock, EV_WRITE, TLS_SOCK_LOW, TLS_SOCK_HIGH);
	bev = bufferevent_openssl_filter_new(loop_base, sock, ssl,
	    outbound ? BUFFEREVENT_SSL_CONNECTING : BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL)
		fatalx("tls: cannot make a bufferevent");
	/* A peer that goes away without close_notify is an EOF. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

/* The socket layer of a TLS bufferevent (to connect, to flush). */
struct bufferevent *
tls_socket(struct bufferevent *bev)
{
	return bufferevent_get_underlying(bev);
}

/* Encrypted bytes queued in the socket layer, not yet in the kernel. */
size_t
tls_queued(struct bufferevent *bev)
{
	return evbuffer_get_length(bufferevent_get_output(tls_socket(bev)));
}

/*
 * Decrypt what the socket layer holds into bev's input, while the
 * input is under its high mark (in bufferevent_openssl's place: its
 * reads fill 16 KiB of a fresh buffer chain each).  Whole records go
 * into pieces of STREAM_READ_PIECE, then the piece is committed: a
 * record cut at a piece's end would stay in OpenSSL, outside any
 * buffer libevent looks at.  Whatever SSL_read() cannot do (more bytes
 * needed, the peer closed, an error) is left for libevent's own read,
 * which finds it again.  Returns the bytes decrypted.
 */
static size_t
tls_decrypt(struct bufferevent *bev)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	size_t got = 0, fill, high;
	struct evbuffer_iovec v;
	bool frozen;
	int r = 1;

	bufferevent_getwatermark(bev, EV_READ, NULL, &high);
	/* libevent's own TLS reads leave the input's end as it was. */
	frozen = evbuffer_reserve_space(in, STREAM_READ_PIECE, &v, 1) != 1;
	if (frozen && evbuffer_unfreeze(in, 0) != 0)
		return 0;
	while (r > 0 && (high == 0 || evbuffer_get_length(in) < high) &&
	    evbuffer_reserve_space(in, STREAM_READ_PIECE, &v, 1) == 1) {
		for (fill = 0; fill + TLS_RECORD <= v.iov_len;
		     fill += (size_t)r)
			if ((r = SSL_read(ssl, (char *)v.iov_base + fill,
				 (int)(v.iov_len - fill))) <= 0)
				break;
		v.iov_len = fill;
		evbuffer_commit_space(in, &v, 1);
		got += fill;
	}
	if (frozen)
		evbuffer_freeze(in, 0);
	return got;
}

/*
 * The socket layer is readable (libevent read 4 KiB of it): read the
 * rest in large pieces, decrypt it all, then let the filter see what
 * is left (an alert, the end, an error) and tell the stream.
 */
static void
tls_sock_read(struct bufferevent *sock, void *arg)
{
	struct bufferevent *bev = arg; /* the filter's own argument */
	size_t got;

	tls_sock_read_more(sock);
	got = tls_decrypt(bev);
	tls_filter_read(sock, arg);
	if (got > 0)
		bufferevent_trigger(bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

/* The cipher of a TLS stream's bufferevent, or NULL before the handshake. */
const char *
tls_cipher(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);

	return ssl != NULL && SSL_is_init_finished(ssl)
	    ? SSL_get_cipher_name(ssl)
	    : NULL;
}

/*
 * The handshake is done: read the socket layer through tls_sock_read()
 * from now on.  The filter's callbacks on it are the same functions for
 * every stream, with the filter as their argument; anything else (another
 * libevent) keeps libevent's own reads.
 */
void
tls_opened(struct bufferevent *bev)
{
	struct bufferevent *sock = tls_socket(bev);
	bufferevent_data_cb rd, wr;
	bufferevent_event_cb ev;
	void *arg;

	bufferevent_getcb(sock, &rd, &wr, &ev, &arg);
	if (rd == tls_sock_read || arg != (void *)bev)
		return;
	if (tls_filter_read == NULL)
		tls_filter_read = rd;
	if (rd != tls_filter_read)
		return;
	bufferevent_setcb(sock, tls_sock_read, wr, ev, arg);
}

/*
 * Whether a TLS bufferevent failed in OpenSSL (not in the socket); if
 * so, the first error is in buf.
 */
bool
tls_failure(struct bufferevent *bev, char *buf, size_t len)
{
	unsigned long e = bufferevent_get_openssl_error(bev);

	if (e == 0)
		return false;
	ERR_error_string_n(e, buf, len);
	while (bufferevent_get_openssl_error(bev) != 0)
		; /* the rest of the queue says less */
	return true;
}

/*
 * Before a close: encrypt what is queued on bev at once, then
 * close_notify, all into the socket layer, which is returned for the
 * caller to write out (best effort: the socket is non-blocking, and a
 * record TLS has half written stops it).  A failed handshake's alert is
 * there already.
 */
struct bufferevent *
tls_push_out(struct bufferevent *bev)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	size_t len = evbuffer_get_length(out);

	if (ssl == NULL || !SSL_is_init_finished(ssl))
		return tls_socket(bev);
	bufferevent_setwatermark(tls_socket(bev), EV_WRITE, 0, 0);
	if (len == 0 ||
	    SSL_write(ssl, evbuffer_pullup(out, (ssize_t)len), (int)len) > 0)
		SSL_shutdown(ssl);
	return tls_socket(bev);
}
