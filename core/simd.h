/* simd.h - loops that vectorize compiled for the CPU that runs them.
 *
 * The build targets baseline x86-64 (SSE2), so on x86-64 a function marked
 * SIMD_CLONES is also compiled for AVX2 and AVX-512 and the loader picks
 * the widest the CPU has. -DSIMD_CLONES= turns that off.
 */
#ifndef ADVEX_SIMD_H
#define ADVEX_SIMD_H

#ifndef SIMD_CLONES
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#endif
#ifndef SIMD_CLONES
#define SIMD_CLONES
#endif

#endif
