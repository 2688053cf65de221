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
 */
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "auth.h"
#include "pufs.h"
#include "stream-int.h"

#define TLS_SUITE "TLS_AES_128_GCM_SHA256"

/* Most plaintext one record holds. */
#define TLS_RECORD (16u << 10)

static SSL_CTX *tls_ctx;
static SSL_SESSION *tls_psk; /* the key, as a TLS 1.3 session */
static const unsigned char tls_identity[] = "pufs psk v1";

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

/* Make the context and the key's session, if streams are encrypted. */
void
tls_init(void)
{
	static const unsigned char aes128gcm[] = { 0x13, 0x01 };
	uint8_t psk[AUTH_KEY_LEN];
	const SSL_CIPHER *cipher;
	SSL *ssl;

	if (!conf->encrypt)
		return;
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
 * A TLS bufferevent around fd (-1: to be connected), as the initiator
 * or the acceptor; NULL when streams are not encrypted.
 */
struct bufferevent *
tls_bufferevent(int fd, bool outbound)
{
	struct bufferevent *bev;
	SSL *ssl;

	if (tls_ctx == NULL)
		return NULL;
	if ((ssl = SSL_new(tls_ctx)) == NULL)
		fatalx("tls: cannot make a session");
	bev = bufferevent_openssl_socket_new(loop_base, fd, ssl,
	    outbound ? BUFFEREVENT_SSL_CONNECTING : BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		fatalx("tls: cannot make a bufferevent");
	/* A peer that goes away without close_notify is an EOF. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
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
 * Read what else a TLS stream's socket holds, decrypted into its input,
 * up to turn bytes and while the input is under high.  libevent 2.1
 * takes one record (16 KiB) a loop turn; a 4 MiB frame took 256 turns.
 * Whatever SSL_read() cannot do at once (it wants the socket readable
 * or writable, the peer closed, an error) is left for libevent's own
 * next read, which finds it again.
 */
void
tls_read_more(struct bufferevent *bev, size_t turn, size_t high)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	struct evbuffer_iovec v;
	size_t got = 0, fill;
	bool frozen;
	int r = 1;

	if (ssl == NULL || !SSL_is_init_finished(ssl))
		return;
	/* libevent's own TLS reads leave the input's end as it was. */
	frozen = evbuffer_reserve_space(in, STREAM_READ_PIECE, &v, 1) != 1;
	if (frozen && evbuffer_unfreeze(in, 0) != 0)
		return;
	while (r > 0 && got < turn && evbuffer_get_length(in) < high &&
	    evbuffer_reserve_space(in, STREAM_READ_PIECE, &v, 1) == 1) {
		/*
		 * Whole records into the piece, then it is committed: a
		 * record cut at its end would leave bytes in OpenSSL, which
		 * no readable socket would bring us back for.
		 */
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
 * Before a close: write what is queued on bev through its TLS session
 * at once, then close_notify (best effort: the socket is non-blocking,
 * and a record TLS has half written stops it).
 */
void
tls_push_out(struct bufferevent *bev)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	size_t len = evbuffer_get_length(out);

	if (ssl == NULL || !SSL_is_init_finished(ssl))
		return;
	if (len > 0 &&
	    SSL_write(ssl, evbuffer_pullup(out, (ssize_t)len), (int)len) <= 0)
		return;
	SSL_shutdown(ssl);
}
