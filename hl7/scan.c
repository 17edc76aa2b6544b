/* The delimiter scanner: finds every field separator and segment terminator of a message.
 *
 * The message is read in 64-byte blocks. For each block two 64-bit masks are built, one
 * bit per byte: the field separators (mf) and the segment terminators \r and \n (mn). The
 * AVX2 path builds them with two 32-byte compares; the portable path with SWAR arithmetic
 * on eight 64-bit words. Everything after the masks is shared, so both paths produce the
 * same index by construction, and the tests check that they do over the whole corpus.
 *
 * Most blocks hold no terminator: their separator offsets are written out in one go
 * (simdjson's "flatten bits"), eight at a time without a branch per bit. Blocks with a
 * terminator also close segments. The last partial block is copied into a zeroed stack
 * block, so the scanner never reads past the end of the caller's buffer (a zero byte can
 * match neither mask: the parser refuses NUL as a field separator). */
#include "hl7/internal.h"

#include "common/alloc.h"

#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define HL7_HAVE_AVX2 1
#include <immintrin.h>
#else
#define HL7_HAVE_AVX2 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define HL7_INLINE      static inline __attribute__((always_inline))
#define HL7_NOINLINE    static __attribute__((noinline))
#define HL7_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define HL7_INLINE      static inline
#define HL7_NOINLINE    static
#define HL7_UNLIKELY(x) (x)
#endif

#define BLOCK 64
/* Entries flatten() may write past the last real one. */
#define SEPS_SLACK 16

typedef struct scanner {
    hl7_msg_t *m;
    const char *base;
    uint32_t *seps;
    uint32_t n;         /* separators found */
    uint32_t seg_start; /* offset where the current segment starts */
    uint32_t sep0;      /* index of its first separator */
    bool strict;
    bool pending_empty; /* an empty line was seen and no segment has followed yet */
    bool lf_seen;
    uint32_t lf_seg;
    uint32_t bad_off; /* where a strict \n stood */
    px_err rc;
} scanner;

static inline unsigned ctz64(uint64_t x)
{
    return (unsigned)__builtin_ctzll(x);
}

/* Writes the offsets of the set bits of bits (offset off + bit) to out and returns how many
 * there are. Writes up to SEPS_SLACK entries more than that (garbage, overwritten later);
 * or-ing the top bit keeps ctz defined once bits runs out. */
HL7_INLINE uint32_t flatten(uint32_t *out, uint32_t off, uint64_t bits)
{
    uint32_t cnt = (uint32_t)__builtin_popcountll(bits);
    const uint64_t top = (uint64_t)1 << 63;
    for (int i = 0; i < 8; i++) {
        out[i] = off + ctz64(bits | top);
        bits &= bits - 1;
    }
    if (HL7_UNLIKELY(cnt > 8)) {
        for (int i = 8; i < 16; i++) {
            out[i] = off + ctz64(bits | top);
            bits &= bits - 1;
        }
        for (uint32_t i = 16; bits != 0; i++) {
            out[i] = off + ctz64(bits);
            bits &= bits - 1;
        }
    }
    return cnt;
}

static px_err grow_segs(hl7_msg_t *m)
{
    size_t cap = m->seg_cap == 0 ? 64 : (size_t)m->seg_cap * 2;
    if (cap > UINT32_MAX)
        return PX_ERR_TOO_LARGE;
    hl7__seg *p = px_realloc(m->segs, cap * sizeof(*p));
    if (p == NULL)
        return PX_ERR_NOMEM;
    m->segs = p;
    m->seg_cap = (uint32_t)cap;
    return PX_OK;
}

/* Makes room for BLOCK separators plus slack after the n found so far. */
static px_err grow_seps(scanner *s)
{
    hl7_msg_t *m = s->m;
    size_t need = (size_t)s->n + BLOCK + SEPS_SLACK;
    size_t cap = m->seps_cap == 0 ? 256 : (size_t)m->seps_cap;
    while (cap < need)
        cap *= 2;
    if (cap > (size_t)UINT32_MAX)
        return PX_ERR_TOO_LARGE;
    uint32_t *p = px_realloc(m->seps, cap * sizeof(*p));
    if (p == NULL)
        return PX_ERR_NOMEM;
    m->seps = p;
    m->seps_cap = (uint32_t)cap;
    s->seps = p;
    return PX_OK;
}

/* Ends the segment that runs up to offset p (exclusive). Empty lines make no segment; they
 * are reported once a segment follows them, so trailing terminators pass silently. */
static px_err close_segment(scanner *s, uint32_t p)
{
    hl7_msg_t *m = s->m;
    if (p > s->seg_start) {
        if (m->nseg == m->seg_cap) {
            px_err rc = grow_segs(m);
            if (rc != PX_OK)
                return rc;
        }
        m->segs[m->nseg] =
            (hl7__seg){.start = s->seg_start, .end = p, .sep0 = s->sep0, .nsep = s->n - s->sep0};
        m->nseg++;
        if (s->pending_empty) {
            hl7__add_problem(m, HL7_PROB_EMPTY_SEGMENT, m->nseg - 1, 0);
            s->pending_empty = false;
        }
    } else {
        s->pending_empty = true;
    }
    s->seg_start = p + 1;
    s->sep0 = s->n;
    return PX_OK;
}

/* A terminator c at offset p. \r\n counts as one terminator: the \r closed the segment,
 * the \n that directly follows it only moves the start on. */
HL7_NOINLINE px_err on_terminator(scanner *s, uint32_t p, char c)
{
    if (c == '\n') {
        if (s->strict) {
            s->bad_off = p;
            return PX_ERR_PARSE;
        }
        if (p > 0 && s->base[p - 1] == '\r') {
            s->seg_start = p + 1;
            if (!s->lf_seen) {
                s->lf_seen = true;
                s->lf_seg = s->m->nseg > 0 ? s->m->nseg - 1 : 0;
            }
            return PX_OK;
        }
        px_err rc = close_segment(s, p);
        if (!s->lf_seen) {
            s->lf_seen = true;
            s->lf_seg = s->m->nseg > 0 ? s->m->nseg - 1 : 0;
        }
        return rc;
    }
    return close_segment(s, p);
}

/* Handles one block at offset off whose bytes are blk, given its masks. */
HL7_INLINE px_err block(scanner *s, const char *blk, uint32_t off, uint64_t mf, uint64_t mn)
{
    if (HL7_UNLIKELY(s->n + BLOCK + SEPS_SLACK > s->m->seps_cap)) {
        px_err rc = grow_seps(s);
        if (rc != PX_OK)
            return rc;
    }
    while (mn != 0) {
        unsigned b = ctz64(mn);
        uint64_t below = ((uint64_t)1 << b) - 1;
        s->n += flatten(s->seps + s->n, off, mf & below);
        mf &= ~below;
        px_err rc = on_terminator(s, off + b, blk[b]);
        if (rc != PX_OK)
            return rc;
        mn &= mn - 1;
    }
    s->n += flatten(s->seps + s->n, off, mf);
    return PX_OK;
}

/* ---- portable masks (SWAR) ---- */

static inline uint64_t load64(const char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof(w));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

/* 0x80 in every byte of w equal to the byte in pat (replicated), else 0; exact, since the
 * addition cannot carry across bytes. */
static inline uint64_t eq_bytes(uint64_t w, uint64_t pat)
{
    const uint64_t low7 = 0x7f7f7f7f7f7f7f7fULL;
    uint64_t t = w ^ pat;
    uint64_t y = ((t & low7) + low7) | t;
    return ~y & 0x8080808080808080ULL;
}

/* Gathers the top bits of the eight bytes into eight bits (byte k -> bit k). */
static inline uint64_t pack_bytes(uint64_t hi)
{
    return ((hi >> 7) * 0x0102040810204080ULL) >> 56;
}

HL7_INLINE void masks_swar(const char *p, uint64_t pf, uint64_t *mf, uint64_t *mn)
{
    const uint64_t pcr = 0x0d0d0d0d0d0d0d0dULL, plf = 0x0a0a0a0a0a0a0a0aULL;
    uint64_t f = 0, n = 0;
    for (unsigned k = 0; k < BLOCK / 8; k++) {
        uint64_t w = load64(p + 8 * k);
        f |= pack_bytes(eq_bytes(w, pf)) << (8 * k);
        n |= pack_bytes(eq_bytes(w, pcr) | eq_bytes(w, plf)) << (8 * k);
    }
    *mf = f;
    *mn = n;
}

static px_err run_swar(scanner *s, const char *base, uint32_t len, char fs)
{
    uint64_t pf = 0x0101010101010101ULL * (unsigned char)fs;
    uint32_t off = 0;
    for (; len - off >= BLOCK; off += BLOCK) {
        uint64_t mf, mn;
        masks_swar(base + off, pf, &mf, &mn);
        px_err rc = block(s, base + off, off, mf, mn);
        if (rc != PX_OK)
            return rc;
    }
    if (off < len) {
        char tail[BLOCK] = {0};
        memcpy(tail, base + off, len - off);
        uint64_t mf, mn;
        masks_swar(tail, pf, &mf, &mn);
        return block(s, tail, off, mf, mn);
    }
    return PX_OK;
}

/* ---- AVX2 masks ---- */

#if HL7_HAVE_AVX2
#define HL7_AVX2 __attribute__((target("avx2,popcnt")))

HL7_AVX2 static inline void masks_avx2(const char *p, __m256i vf, uint64_t *mf, uint64_t *mn)
{
    const __m256i vcr = _mm256_set1_epi8('\r'), vlf = _mm256_set1_epi8('\n');
    __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
    uint32_t fa = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, vf));
    uint32_t fb = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, vf));
    uint32_t na = (uint32_t)_mm256_movemask_epi8(
        _mm256_or_si256(_mm256_cmpeq_epi8(a, vcr), _mm256_cmpeq_epi8(a, vlf)));
    uint32_t nb = (uint32_t)_mm256_movemask_epi8(
        _mm256_or_si256(_mm256_cmpeq_epi8(b, vcr), _mm256_cmpeq_epi8(b, vlf)));
    *mf = (uint64_t)fa | ((uint64_t)fb << 32);
    *mn = (uint64_t)na | ((uint64_t)nb << 32);
}

HL7_AVX2 static px_err run_avx2(scanner *s, const char *base, uint32_t len, char fs)
{
    const __m256i vf = _mm256_set1_epi8(fs);
    uint32_t off = 0;
    for (; len - off >= BLOCK; off += BLOCK) {
        uint64_t mf, mn;
        masks_avx2(base + off, vf, &mf, &mn);
        px_err rc = block(s, base + off, off, mf, mn);
        if (rc != PX_OK)
            return rc;
    }
    if (off < len) {
        char tail[BLOCK] = {0};
        memcpy(tail, base + off, len - off);
        uint64_t mf, mn;
        masks_avx2(tail, vf, &mf, &mn);
        return block(s, tail, off, mf, mn);
    }
    return PX_OK;
}
#endif

bool hl7__simd_supported(void)
{
#if HL7_HAVE_AVX2
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
#else
    return false;
#endif
}

px_err hl7__index(hl7_msg_t *m, char fs, unsigned flags, px_error *err)
{
    scanner s = {
        .m = m,
        .base = m->base,
        .seps = m->seps,
        .strict = (flags & HL7_PARSE_STRICT) != 0,
    };
    uint32_t len = (uint32_t)m->len;
    m->nseg = 0;
    m->nsep = 0;
    px_err rc = grow_seps(&s);
    if (rc != PX_OK)
        goto out;
#if HL7_HAVE_AVX2
    if (m->simd)
        rc = run_avx2(&s, m->base, len, fs);
    else
        rc = run_swar(&s, m->base, len, fs);
#else
    rc = run_swar(&s, m->base, len, fs);
#endif
    if (rc != PX_OK)
        goto out;
    if (s.seg_start < len) {
        rc = close_segment(&s, len);
        if (rc != PX_OK)
            goto out;
    }
    m->nsep = s.n;
    if (s.lf_seen)
        hl7__add_problem(m, HL7_PROB_LF_SEPARATOR, s.lf_seg, 0);
    return PX_OK;
out:
    m->nseg = 0;
    m->nsep = 0;
    if (rc == PX_ERR_PARSE)
        return px_error_setd(err, rc, (int)s.bad_off,
                             "segment separator \\n at offset %u refused in strict mode",
                             (unsigned)s.bad_off);
    if (rc == PX_ERR_NOMEM)
        return px_error_set(err, rc, "out of memory indexing a message");
    return px_error_set(err, rc, "message index too large");
}
