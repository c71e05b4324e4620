/* fuzz_png.c - libFuzzer harness for the PNG reader (image_decode_png: the
 * same libpng path and conversions as a file read). A random byte change
 * almost always breaks a chunk CRC, and libpng stops at the first bad CRC,
 * so the custom mutator recomputes every chunk's CRC after libFuzzer's
 * mutation: the fuzzer then reaches the decoder instead of the checksum. */
#include "image.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed);

static uint32_t crc32_png(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	size_t i;
	int k;

	for (i = 0; i < n; i++) {
		c ^= p[i];
		for (k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
	}
	return c ^ 0xffffffffu;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Walk the chunks after the 8-byte signature and rewrite each CRC that
 * lies inside the data. */
static void fix_crcs(uint8_t *data, size_t size)
{
	size_t off = 8;

	while (off + 12 <= size) {
		uint32_t len = get_be32(data + off), c;

		if (len > size - off - 12)
			break;
		c = crc32_png(data + off + 4, (size_t)len + 4);
		data[off + 8 + len] = (uint8_t)(c >> 24);
		data[off + 9 + len] = (uint8_t)(c >> 16);
		data[off + 10 + len] = (uint8_t)(c >> 8);
		data[off + 11 + len] = (uint8_t)c;
		off += (size_t)len + 12;
	}
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed)
{
	(void)seed;
	size = LLVMFuzzerMutate(data, size, max_size);
	fix_crcs(data, size);
	return size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[ERR_MAX];
	float *pix = NULL;
	int h, w;

	/* With valid CRCs most mutants of IHDR claim thousands of pixels a
	 * side, and decoding each costs up to a gigabyte and a second: the
	 * size check itself is covered by test_png and test_dataset, so
	 * larger images are left out to keep the fuzzer fast. */
	if (size >= 24 && (uint64_t)get_be32(data + 16) * get_be32(data + 20) >
			  512 * 512)
		return 0;
	if (image_decode_png(data, size, &pix, &h, &w, err) == ST_OK)
		free(pix);
	return 0;
}
