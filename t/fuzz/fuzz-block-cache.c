/*
 * fuzz-block-cache.c - libFuzzer target for cache/block-cache.c.
 *
 * The input is a script for the reference model of t/unit/block-model.h:
 * its first two bytes pick the budget (4 to 19 blocks, plus up to 2 KiB
 * for range arrays), and every parameter after them, the operation
 * included, is read from the next two bytes (little-endian, modulo what
 * the operation needs), until the input ends.  Each operation is checked
 * against the model and by block_cache_check() (indexes, LRU, ranges,
 * counters against a walk, the budget); at the end every operation in
 * flight is ended and every file dropped, which must leave the cache
 * empty.  A difference aborts, and so does any sanitizer report.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "block-model.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* The input, as the model's draws take it. */
struct input {
	const uint8_t *p;
	size_t len, pos;
};

/* The next two bytes of the input; 0 once it is used up. */
static uint64_t
draw_input(void *arg)
{
	struct input *in = arg;
	uint64_t v = 0;

	if (in->pos < in->len)
		v = in->p[in->pos++];
	if (in->pos < in->len)
		v |= (uint64_t)in->p[in->pos++] << 8;
	return v;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct bm m;
	struct input in = { data, size, 2 };
	size_t budget;
	bool ok = true;

	if (size < 2)
		return 0;
	budget = (4 + data[0] % 16) * (BM_BS + block_cache_block_overhead()) +
	    (size_t)data[1] * 8;
	if (!bm_init(&m, budget, draw_input, &in))
		abort();
	while (ok && in.pos < in.len)
		ok = bm_step(&m);
	if (ok)
		ok = bm_verify_all(&m) && bm_drain(&m);
	if (!ok) {
		fprintf(stderr, "fuzz-block-cache: %s\n", m.why);
		abort();
	}
	bm_fini(&m);
	return 0;
}
