//===----------------------------------------------------------------------===//
// CUnionMount_scan_line: the byte scan of the mountinfo parser.
//
// One pass over a line finds its end and where its spaces are, 64 bytes at a
// time with AVX2 when the CPU has it (checked once), 16 at a time with SSE2
// (every x86-64 CPU) otherwise, a byte at a time on other architectures.
// Swift cannot enable AVX2 for one function; C can (`target("avx2")`).
// No policy here: the fields are split and checked in Swift.
//===----------------------------------------------------------------------===//
#include "CUnionMountShim.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/// Records the positions `offset + i` of the set bits `i` of `bits` after the `*count` already recorded, while
/// there is room, and adds their number to `*count`.
static inline __attribute__((always_inline)) void record(uint64_t bits, size_t offset, size_t *spaces,
                                                         size_t capacity, size_t *count) {
    size_t n = *count;
    while (bits != 0) {
        if (n < capacity) spaces[n] = offset + (size_t)__builtin_ctzll(bits);
        n++;
        bits &= bits - 1;
    }
    *count = n;
}

/// The portable tail: bytes `[cursor, total)` one at a time.
static inline __attribute__((always_inline)) size_t scan_bytes(const uint8_t *base, size_t cursor, size_t total,
                                                              size_t *spaces, size_t capacity, size_t *count) {
    size_t n = *count;
    for (; cursor < total; cursor++) {
        uint8_t byte = base[cursor];
        if (byte == '\n') break;
        if (byte == ' ') {
            if (n < capacity) spaces[n] = cursor;
            n++;
        }
    }
    *count = n;
    return cursor;
}

#if defined(__x86_64__)

/// The bytes of a line past its last whole block: at most `block - 1`, copied into a zeroed block so one more
/// vector step covers them (a zero byte is neither a newline nor a space).
#define TAIL_BLOCK(name, block, base, cursor, total)                                                              \
    uint8_t name[block] __attribute__((aligned(block))) = {0};                                                    \
    __builtin_memcpy(name, (base) + (cursor), (total) - (cursor))

__attribute__((target("avx2"), always_inline)) static inline uint64_t avx2_mask(__m256i low, __m256i high, __m256i byte) {
    uint64_t lowBits = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(low, byte));
    uint64_t highBits = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(high, byte));
    return lowBits | highBits << 32;
}

/// One 64-byte block at `bytes` (position `offset`): records its spaces up to the first newline; returns the
/// newline's position or SIZE_MAX.
__attribute__((target("avx2"), always_inline)) static inline size_t avx2_block(const uint8_t *bytes, size_t offset,
                                                                size_t *spaces, size_t capacity, size_t *count) {
    __m256i low = _mm256_loadu_si256((const __m256i *)bytes);
    __m256i high = _mm256_loadu_si256((const __m256i *)(bytes + 32));
    uint64_t newlines = avx2_mask(low, high, _mm256_set1_epi8('\n'));
    uint64_t blanks = avx2_mask(low, high, _mm256_set1_epi8(' '));
    if (newlines != 0) {
        // The bits below the first newline.
        record(blanks & ((newlines & -newlines) - 1), offset, spaces, capacity, count);
        return offset + (size_t)__builtin_ctzll(newlines);
    }
    record(blanks, offset, spaces, capacity, count);
    return SIZE_MAX;
}

__attribute__((target("avx2"))) static size_t scan_avx2(const uint8_t *base, size_t cursor, size_t total,
                                                        size_t *spaces, size_t capacity, size_t *count) {
    for (; cursor + 64 <= total; cursor += 64) {
        size_t end = avx2_block(base + cursor, cursor, spaces, capacity, count);
        if (end != SIZE_MAX) return end;
    }
    if (cursor == total) return total;
    TAIL_BLOCK(tail, 64, base, cursor, total);
    size_t end = avx2_block(tail, cursor, spaces, capacity, count);
    return end != SIZE_MAX ? end : total;
}

/// The same with SSE2, 16 bytes per block.
static inline __attribute__((always_inline)) size_t sse2_block(const uint8_t *bytes, size_t offset, size_t *spaces, size_t capacity,
                                size_t *count) {
    __m128i block = _mm_loadu_si128((const __m128i *)bytes);
    uint64_t newlines = (uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(block, _mm_set1_epi8('\n')));
    uint64_t blanks = (uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(block, _mm_set1_epi8(' ')));
    if (newlines != 0) {
        record(blanks & ((newlines & -newlines) - 1), offset, spaces, capacity, count);
        return offset + (size_t)__builtin_ctzll(newlines);
    }
    record(blanks, offset, spaces, capacity, count);
    return SIZE_MAX;
}

static size_t scan_sse2(const uint8_t *base, size_t cursor, size_t total, size_t *spaces, size_t capacity,
                        size_t *count) {
    for (; cursor + 16 <= total; cursor += 16) {
        size_t end = sse2_block(base + cursor, cursor, spaces, capacity, count);
        if (end != SIZE_MAX) return end;
    }
    if (cursor == total) return total;
    TAIL_BLOCK(tail, 16, base, cursor, total);
    size_t end = sse2_block(tail, cursor, spaces, capacity, count);
    return end != SIZE_MAX ? end : total;
}

#endif // __x86_64__

size_t CUnionMount_scan_line(const uint8_t *base, size_t from, size_t total, size_t *spaces, size_t capacity,
                             size_t *count) {
    *count = 0;
#if defined(__x86_64__)
    // 1: AVX2, 2: SSE2 only; 0: not asked yet. A race only asks twice.
    static int level = 0;
    int known = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (known == 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx2") ? 1 : 2;
        __atomic_store_n(&level, known, __ATOMIC_RELAXED);
    }
    if (known == 1) return scan_avx2(base, from, total, spaces, capacity, count);
    return scan_sse2(base, from, total, spaces, capacity, count);
#else
    return scan_bytes(base, from, total, spaces, capacity, count);
#endif
}
