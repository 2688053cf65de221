/*
 * test-ntp.c - the clock offset estimator: exact cases, the best of the
 * last samples wins, old samples age out, skews of seconds either way.
 */
#include <stdint.h>

#include "ntp.h"
#include "tap.h"

#define S 1000000000ULL /* ns per second */

int
main(void)
{
	struct ntp c;
	uint64_t base = 1800000000ULL * S;

	ntp_reset(&c);
	tap_is_int(c.offset, 0, "no sample: offset 0");

	/* A symmetric 2 ms round trip to a clock 5 s behind ours. */
	tap_is_int(ntp_sample(&c, base, base + 2000000, base - 5 * S + 1000000),
	    0, "sample taken");
	tap_is_int(c.offset, -(int64_t)(5 * S), "offset -5 s exactly");
	tap_is_int(c.error, 1000000, "error bound half the round trip");

	/* A slower, asymmetric trip does not replace the better one. */
	ntp_sample(&c, base + S, base + S + 40000000, base - 4 * S + 30000000);
	tap_is_int(c.offset, -(int64_t)(5 * S), "slower sample ignored");
	tap_is_int(c.error, 1000000, "error bound kept");

	/* A faster trip wins. */
	ntp_sample(&c, base + 2 * S, base + 2 * S + 200000,
	    base - 3 * S + 100000);
	tap_is_int(c.error, 100000, "faster sample wins");

	/* After NTP_SAMPLES worse samples the fast one ages out. */
	for (int i = 0; i < NTP_SAMPLES; i++)
		ntp_sample(&c, base + 10 * S, base + 10 * S + 6000000,
		    base + 13500000000ULL + 3000000);
	tap_is_int(c.offset, (int64_t)(3500000000ULL), "new offset +3.5 s");
	tap_is_int(c.error, 3000000, "its bound 3 ms");

	/* A reversed trip is refused and changes nothing. */
	tap_is_int(ntp_sample(&c, base + 5, base, base), -1, "t3 < t0 refused");
	tap_is_int(c.offset, (int64_t)(3500000000ULL), "offset unchanged");

	/* Odd nanoseconds are not lost in the halving. */
	ntp_reset(&c);
	ntp_sample(&c, 1, 4, 100);
	tap_is_int(c.offset, 98, "(1 + 4) / 2 rounds down: 100 - 2");
	return tap_done();
}
