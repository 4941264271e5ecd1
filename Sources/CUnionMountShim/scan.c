//===----------------------------------------------------------------------===//
// CUnionMount_scan_line: the byte scan of one mountinfo line (a parsed entry
// reads its line again with it when asked for a field).
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

//===----------------------------------------------------------------------===//
// CUnionMount_scan_lines: the same scan for a run of lines at once.
//
// The bytes are read in 64-byte blocks at fixed steps from `from`, whatever the
// line boundaries: no block depends on where the previous line ended, so the
// loads never wait on each other. Each block's spaces are appended to one array
// and each newline closes a line record. AVX-512 (VBMI2 compress) when the CPU
// has it, AVX2, or a byte loop, chosen once; all three write the same records.
//===----------------------------------------------------------------------===//

/// Blocks past this distance from `from` are not started, so every position fits 32 bits.
#define SCAN_LINES_LIMIT ((size_t)0xFFFF0000u)

/// Bit i: `base[at + i]` is an ASCII digit or a space, for `at + i < total` and i < 64 (portable version).
static inline uint64_t digits_bytes(const uint8_t *base, size_t at, size_t total) {
    uint64_t bits = 0;
    for (size_t i = 0; i < 64 && at + i < total; i++) {
        uint8_t byte = base[at + i];
        if ((uint8_t)(byte - '0') < 10 || byte == ' ') bits |= (uint64_t)1 << i;
    }
    return bits;
}

/// The byte loop, in the same 64-byte blocks as the vector versions so that it stops at the same places.
static size_t scan_lines_bytes(const uint8_t *base, size_t from, size_t total, uint32_t *spaces,
                               size_t space_capacity, CUnionMount_line *lines, size_t line_capacity) {
    size_t n = 0, m = 0, line_start = from;
    lines[0].digits = digits_bytes(base, from, total);
    for (size_t cursor = from; cursor < total; cursor += 64) {
        if (n >= space_capacity || m >= line_capacity || cursor - from >= SCAN_LINES_LIMIT) return m;
        size_t stop = total - cursor < 64 ? total : cursor + 64;
        for (size_t at = cursor; at < stop; at++) {
            uint8_t byte = base[at];
            if (byte == ' ') {
                spaces[n++] = (uint32_t)(at - from);
            } else if (byte == '\n') {
                lines[m].end = (uint32_t)(at - from);
                lines[m].spaces = (uint32_t)n;
                m++;
                lines[m].digits = digits_bytes(base, at + 1, total);
                line_start = at + 1;
            }
        }
    }
    if (line_start < total) {
        lines[m].end = (uint32_t)(total - from);
        lines[m].spaces = (uint32_t)n;
        m++;
    }
    return m;
}

#if defined(__x86_64__)

/// Bit i: `base[at + i]` is an ASCII digit or a space (AVX2 version; `at` may be `total` or past it).
__attribute__((target("avx2"))) static inline uint64_t digits_avx2(const uint8_t *base, size_t at, size_t total) {
    const uint8_t *bytes = base + at;
    uint8_t tail[64] __attribute__((aligned(64)));
    if (at >= total) return 0;
    if (total - at < 64) {
        __builtin_memset(tail, 0, sizeof tail);
        __builtin_memcpy(tail, bytes, total - at);
        bytes = tail;
    }
    const __m256i zero = _mm256_set1_epi8('0'), nine = _mm256_set1_epi8(9), space = _mm256_set1_epi8(' ');
    __m256i low = _mm256_loadu_si256((const __m256i *)bytes);
    __m256i high = _mm256_loadu_si256((const __m256i *)(bytes + 32));
    __m256i lowDigits = _mm256_sub_epi8(low, zero);
    __m256i highDigits = _mm256_sub_epi8(high, zero);
    // Unsigned byte - '0' <= 9: min(that, 9) == that.
    __m256i lowHits = _mm256_or_si256(_mm256_cmpeq_epi8(_mm256_min_epu8(lowDigits, nine), lowDigits),
                                      _mm256_cmpeq_epi8(low, space));
    __m256i highHits = _mm256_or_si256(_mm256_cmpeq_epi8(_mm256_min_epu8(highDigits, nine), highDigits),
                                       _mm256_cmpeq_epi8(high, space));
    return (uint64_t)(uint32_t)_mm256_movemask_epi8(lowHits) |
           (uint64_t)(uint32_t)_mm256_movemask_epi8(highHits) << 32;
}

__attribute__((target("avx2,bmi"))) static size_t scan_lines_avx2(const uint8_t *base, size_t from, size_t total,
                                                                  uint32_t *spaces, size_t space_capacity,
                                                                  CUnionMount_line *lines, size_t line_capacity) {
    size_t n = 0, m = 0, line_start = from;
    lines[0].digits = digits_avx2(base, from, total);
    const __m256i newline = _mm256_set1_epi8('\n'), space = _mm256_set1_epi8(' ');
    for (size_t cursor = from; cursor < total; cursor += 64) {
        if (n >= space_capacity || m >= line_capacity || cursor - from >= SCAN_LINES_LIMIT) return m;
        const uint8_t *bytes = base + cursor;
        uint8_t tail[64] __attribute__((aligned(64)));
        if (total - cursor < 64) {
            __builtin_memset(tail, 0, sizeof tail);
            __builtin_memcpy(tail, bytes, total - cursor);
            bytes = tail;
        }
        __m256i low = _mm256_loadu_si256((const __m256i *)bytes);
        __m256i high = _mm256_loadu_si256((const __m256i *)(bytes + 32));
        uint64_t newlines = avx2_mask(low, high, newline);
        uint64_t blanks = avx2_mask(low, high, space);
        uint32_t offset = (uint32_t)(cursor - from);
        while (newlines != 0) {
            unsigned bit = (unsigned)__builtin_ctzll(newlines);
            uint64_t before = blanks & (((uint64_t)1 << bit) - 1);
            blanks &= ~before;
            for (; before != 0; before &= before - 1) spaces[n++] = offset + (uint32_t)__builtin_ctzll(before);
            lines[m].end = offset + bit;
            lines[m].spaces = (uint32_t)n;
            m++;
            lines[m].digits = digits_avx2(base, cursor + bit + 1, total);
            line_start = cursor + bit + 1;
            newlines &= newlines - 1;
        }
        for (; blanks != 0; blanks &= blanks - 1) spaces[n++] = offset + (uint32_t)__builtin_ctzll(blanks);
    }
    if (line_start < total) {
        lines[m].end = (uint32_t)(total - from);
        lines[m].spaces = (uint32_t)n;
        m++;
    }
    return m;
}

#define AVX512 "avx512f,avx512bw,avx512vl,avx512vbmi2,bmi,bmi2,popcnt,lzcnt"

static const uint8_t block_offsets[64] __attribute__((aligned(64))) = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
    22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43,
    44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63,
};

/// A block of bytes from `at`, zeros past `total` (`at` may be `total` or past it: nothing is read there).
__attribute__((target(AVX512), noinline)) static __m512i tail_avx512(const uint8_t *base, size_t at, size_t total) {
    size_t left = at < total ? total - at : 0;
    return _mm512_maskz_loadu_epi8(_bzhi_u64(~(uint64_t)0, (unsigned)left), base + at);
}

/// 64 bytes from `at`, zeros past `total`: a plain load while a whole block is left.
__attribute__((target(AVX512), always_inline)) static inline __m512i block_avx512(const uint8_t *base, size_t at,
                                                                                    size_t total) {
    if (__builtin_expect(at + 64 <= total, 1)) return _mm512_loadu_si512((const void *)(base + at));
    return tail_avx512(base, at, total);
}

/// Bit i: `base[at + i]` is an ASCII digit or a space (AVX-512 version; `at` may be `total` or past it).
__attribute__((target(AVX512), always_inline)) static inline uint64_t digits_avx512(const uint8_t *base, size_t at,
                                                                                      size_t total) {
    __m512i bytes = block_avx512(base, at, total);
    return _mm512_cmplt_epu8_mask(_mm512_sub_epi8(bytes, _mm512_set1_epi8('0')), _mm512_set1_epi8(10)) |
           _mm512_cmpeq_epi8_mask(bytes, _mm512_set1_epi8(' '));
}

__attribute__((target(AVX512))) static size_t scan_lines_avx512(const uint8_t *base, size_t from, size_t total,
                                                                uint32_t *spaces, size_t space_capacity,
                                                                CUnionMount_line *lines, size_t line_capacity) {
    size_t n = 0, m = 0, line_start = from;
    lines[0].digits = digits_avx512(base, from, total);
    const __m512i newline = _mm512_set1_epi8('\n'), space = _mm512_set1_epi8(' ');
    const __m512i offsets = _mm512_load_si512((const void *)block_offsets);
    for (size_t cursor = from; cursor < total; cursor += 64) {
        if (n >= space_capacity || m >= line_capacity || cursor - from >= SCAN_LINES_LIMIT) return m;
        __m512i block = block_avx512(base, cursor, total);
        uint64_t newlines = _mm512_cmpeq_epi8_mask(block, newline);
        uint64_t blanks = _mm512_cmpeq_epi8_mask(block, space);
        uint32_t offset = (uint32_t)(cursor - from);
        unsigned count = (unsigned)__builtin_popcountll(blanks);

        // The spaces: their offsets in the block, packed to the front, widened and stored 8 at a time (the
        // slack after `space_capacity` takes what lies past `count`); a block rarely has more than 8.
        __m512i packed = _mm512_maskz_compress_epi8(blanks, offsets);
        __m256i base_offset = _mm256_set1_epi32((int)offset);
        _mm256_storeu_si256((__m256i *)(spaces + n),
                            _mm256_add_epi32(_mm256_cvtepu8_epi32(_mm512_castsi512_si128(packed)), base_offset));
        if (count > 8) {
            uint8_t rest[64] __attribute__((aligned(64)));
            _mm512_store_si512((void *)rest, packed);
            for (unsigned k = 8; k < count; k += 8) {
                __m128i eight = _mm_loadl_epi64((const __m128i *)(rest + k));
                _mm256_storeu_si256((__m256i *)(spaces + n + k),
                                    _mm256_add_epi32(_mm256_cvtepu8_epi32(eight), base_offset));
            }
        }

        // The newlines: about one block in three of a mount table has one.
        if (newlines != 0) {
            line_start = cursor + 64 - (size_t)_lzcnt_u64(newlines);
            do {
                unsigned bit = (unsigned)_tzcnt_u64(newlines);
                lines[m].end = offset + bit;
                lines[m].spaces = (uint32_t)(n + (size_t)__builtin_popcountll(_bzhi_u64(blanks, bit)));
                m++;
                lines[m].digits = digits_avx512(base, cursor + bit + 1, total);
                newlines = _blsr_u64(newlines);
            } while (newlines != 0);
        }
        n += count;
    }
    if (line_start < total) {
        lines[m].end = (uint32_t)(total - from);
        lines[m].spaces = (uint32_t)n;
        m++;
    }
    return m;
}

#endif // __x86_64__

size_t CUnionMount_scan_lines(const uint8_t *base, size_t from, size_t total, uint32_t *spaces, size_t space_capacity,
                              CUnionMount_line *lines, size_t line_capacity, int implementation) {
#if defined(__x86_64__)
    // 1: AVX-512 (BW, VL, VBMI2), 2: AVX2, 3: neither; 0: not asked yet. A race only asks twice.
    static int level = 0;
    int known = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (known == 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                        __builtin_cpu_supports("avx512vbmi2") && __builtin_cpu_supports("bmi2")
                    ? 1
                    : __builtin_cpu_supports("avx2") ? 2 : 3;
        __atomic_store_n(&level, known, __ATOMIC_RELAXED);
    }
    int chosen = implementation > known ? implementation : known;
    if (chosen == 1) return scan_lines_avx512(base, from, total, spaces, space_capacity, lines, line_capacity);
    if (chosen == 2) return scan_lines_avx2(base, from, total, spaces, space_capacity, lines, line_capacity);
#else
    (void)implementation;
#endif
    return scan_lines_bytes(base, from, total, spaces, space_capacity, lines, line_capacity);
}
