/* Parse benchmark: full index (every segment and field boundary) of
 *   (a) 1,024 generated ORU^R01 messages of about 2 KB, all different (field lengths,
 *       contents and OBX counts vary, so the branch predictor cannot learn one message),
 *   (b) every message of the corpus (all files under hl7v2/, split into messages),
 *   (c) the generated messages again, parsed and then read at 20 paths each,
 * each with the AVX2 scanner and with the portable one (PX_HL7_NO_SIMD). Every figure is
 * the median of RUNS timed runs of at least MIN_RUN_SECONDS each.
 *
 * Usage: hl7_parse [corpus-dir]   (default $PX_CORPUS, else ../shared/corpus) */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "hl7/batch.h"
#include "hl7/hl7.h"

#define GENERATED       1024
#define RUNS            7
#define MIN_RUN_SECONDS 0.15

typedef struct corpus {
    px_str *msgs;
    size_t count;
    size_t cap;
    size_t bytes;
    char **files;
    size_t nfiles;
    size_t files_cap;
} corpus;

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static const char *pick(const char *const *list, size_t n)
{
    return list[rnd((uint32_t)n)];
}
#define PICK(list) pick(list, sizeof(list) / sizeof(list[0]))

static const char *const FAMILY[] = {
    "SMITH",        "OKAFOR",  "NGUYEN",   "GARCIA-LOPEZ", "LI",
    "VAN DER BERG", "O'BRIEN", "KOWALSKI", "DUBOIS",       "ABERNATHY-WINTERBOTTOM"};
static const char *const GIVEN[] = {"ANN",       "JOSE", "MEI",      "OLUWASEUN", "PIERRE",
                                    "KATHERINE", "AL",   "ZBIGNIEW", "FATIMA",    "JO"};
static const char *const CITY[] = {"SPRINGFIELD", "LAKE FOREST",     "ANN ARBOR",
                                   "YORK",        "SAN LUIS OBISPO", "TROY"};
static const char *const TESTS[] = {"2345-7^Glucose [Mass/volume] in Serum or Plasma",
                                    "718-7^Hemoglobin [Mass/volume] in Blood",
                                    "6690-2^Leukocytes [#/volume] in Blood by Automated count",
                                    "2951-2^Sodium [Moles/volume] in Serum or Plasma",
                                    "2823-3^Potassium",
                                    "94500-6^SARS-CoV-2 RNA [Presence] in Respiratory specimen",
                                    "777-3^Platelets",
                                    "1742-6^ALT"};
static const char *const UNITS[] = {"mg/dL", "g/dL", "10*3/uL", "mmol/L", "%", "U/L", ""};
static const char *const WORDS[] = {"specimen", "received", "hemolyzed", "repeat", "confirmed",
                                    "by",       "second",   "method",    "result", "called",
                                    "to",       "ward",     "nurse",     "at",     "critical",
                                    "value",    "noted",    "see",       "report"};

static void append_words(px_buf *b, unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        if (i > 0)
            px_buf_append_byte(b, ' ');
        px_buf_append_cstr(b, PICK(WORDS));
    }
}

/* One ORU^R01 of roughly 1.5 to 2.6 KB, different in every field that varies in life. */
static void generate_one(px_buf *b, unsigned seq)
{
    unsigned target = 1500 + rnd(1100);
    size_t start = b->len;
    px_buf_appendf(
        b,
        "MSH|^~\\&|LAB%u|FAC%u^2.16.840.1.113883.3.%u^ISO|EHR|HOSP|2024%02u%02u%02u%02u%02u"
        "||ORU^R01^ORU_R01|CTL%08u|P|2.5.1|||AL|NE||UNICODE UTF-8\r",
        rnd(9), rnd(50), rnd(100000), 1 + rnd(12), 1 + rnd(28), rnd(24), rnd(60), rnd(60), seq);
    px_buf_appendf(b,
                   "PID|1||%u^^^HOSP^MR~%03u-%02u-%04u^^^SSA^SS||%s^%s^%c||19%02u%02u%02u|%c|||"
                   "%u %s ST^^%s^%c%c^%05u||(%03u)%03u-%04u\r",
                   rnd(100000000), rnd(1000), rnd(100), rnd(10000), PICK(FAMILY), PICK(GIVEN),
                   'A' + rnd(26), rnd(100), 1 + rnd(12), 1 + rnd(28), rnd(2) ? 'F' : 'M', rnd(9999),
                   PICK(FAMILY), PICK(CITY), 'A' + rnd(26), 'A' + rnd(26), rnd(100000), rnd(1000),
                   rnd(1000), rnd(10000));
    px_buf_appendf(b, "PV1|1|%c|W%u^%u^%c||||%u^%s^%s^^^DR|||||||||||V%u\r", "IOE"[rnd(3)], rnd(20),
                   rnd(400), 'A' + rnd(4), rnd(99999), PICK(FAMILY), PICK(GIVEN), rnd(10000000));
    unsigned order = rnd(10000000);
    px_buf_appendf(b, "ORC|RE|%u^EHR|F%u^LAB||CM\r", order, order + rnd(1000));
    px_buf_appendf(b, "OBR|1|%u^EHR|F%u^LAB|%s^LN|||2024%02u%02u%02u%02u||||||||%u^%s\r", order,
                   order + rnd(1000), PICK(TESTS), 1 + rnd(12), 1 + rnd(28), rnd(24), rnd(60),
                   rnd(99999), PICK(FAMILY));
    for (unsigned i = 1; b->len - start < target && i < 40; i++) {
        switch (rnd(4)) {
        case 0:
            px_buf_appendf(b, "OBX|%u|NM|%s^LN||%u.%u|%s|%u-%u|%s|||F|||2024%02u%02u\r", i,
                           PICK(TESTS), rnd(1000), rnd(100), PICK(UNITS), rnd(10), 10 + rnd(300),
                           rnd(3) ? "N" : "H", 1 + rnd(12), 1 + rnd(28));
            break;
        case 1:
            px_buf_appendf(b, "OBX|%u|CWE|%s^LN||%u^%s^SCT||||%s|||F\r", i, PICK(TESTS),
                           rnd(99999999), PICK(WORDS), rnd(2) ? "A" : "");
            break;
        case 2:
            px_buf_appendf(b, "OBX|%u|ST|%s^LN||", i, PICK(TESTS));
            append_words(b, 1 + rnd(12));
            px_buf_append_cstr(b, "||||||F\r");
            break;
        default:
            px_buf_appendf(b, "NTE|%u|L|", i);
            append_words(b, 2 + rnd(30));
            px_buf_append_byte(b, '\r');
            break;
        }
    }
}

/* Fills c with GENERATED messages in one buffer; returns the buffer (owned). */
static char *generate(corpus *c)
{
    px_buf b;
    px_buf_init(&b, (size_t)64 << 20);
    size_t offs[GENERATED + 1];
    for (unsigned i = 0; i < GENERATED; i++) {
        offs[i] = b.len;
        generate_one(&b, i);
    }
    offs[GENERATED] = b.len;
    size_t len;
    char *data = px_buf_steal(&b, &len);
    for (unsigned i = 0; i < GENERATED; i++) {
        c->msgs[c->count++] = px_str_make(data + offs[i], offs[i + 1] - offs[i]);
        c->bytes += offs[i + 1] - offs[i];
    }
    return data;
}

static int add_message(corpus *c, px_str msg)
{
    if (c->count == c->cap) {
        size_t cap = c->cap == 0 ? 1024 : c->cap * 2;
        px_str *p = realloc(c->msgs, cap * sizeof(*p));
        if (p == NULL)
            return -1;
        c->msgs = p;
        c->cap = cap;
    }
    c->msgs[c->count++] = msg;
    c->bytes += msg.len;
    return 0;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *data = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap == 0 ? 65536 : cap * 2;
            char *p = realloc(data, cap);
            if (p == NULL) {
                free(data);
                fclose(f);
                return NULL;
            }
            data = p;
        }
        size_t got = fread(data + n, 1, cap - n, f);
        if (got == 0)
            break;
        n += got;
    }
    fclose(f);
    *len = n;
    return data;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Adds every message of every file under dir (recursively). */
static void load_dir(corpus *c, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (d == NULL || depth > 16) {
        if (d != NULL)
            closedir(d);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        int n = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(path))
            continue;
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            load_dir(c, path, depth + 1);
            continue;
        }
        if (!S_ISREG(st.st_mode) || ends_with(path, ".tsv") || ends_with(path, ".xml"))
            continue;
        size_t len;
        char *data = read_file(path, &len);
        if (data == NULL)
            continue;
        if (c->nfiles == c->files_cap) {
            size_t cap = c->files_cap == 0 ? 256 : c->files_cap * 2;
            char **p = realloc(c->files, cap * sizeof(*p));
            if (p == NULL) {
                free(data);
                continue;
            }
            c->files = p;
            c->files_cap = cap;
        }
        c->files[c->nfiles++] = data;
        hl7_batch_iter it;
        hl7_batch_iter_init(&it, px_str_make(data, len));
        for (int guard = 0; guard < 1000000; guard++) {
            px_str msg;
            px_error err;
            px_err rc = hl7_batch_next(&it, &msg, &err);
            if (rc == PX_ERR_AGAIN)
                break;
            if (rc == PX_OK && add_message(c, msg) != 0)
                break;
        }
    }
    closedir(d);
}

static hl7_msg_t *new_parser(int scalar)
{
    if (scalar)
        setenv("PX_HL7_NO_SIMD", "1", 1);
    else
        unsetenv("PX_HL7_NO_SIMD");
    hl7_msg_t *m = NULL;
    px_error err;
    if (hl7_msg_create(&m, &err) != PX_OK) {
        fprintf(stderr, "hl7_parse: %s\n", err.msg);
        exit(1);
    }
    unsetenv("PX_HL7_NO_SIMD");
    return m;
}

static const char *const PATHS[20] = {
    "MSH-3",  "MSH-4.1", "MSH-7",   "MSH-9.1",    "MSH-9.2",  "MSH-10",   "MSH-11",
    "MSH-12", "MSH-18",  "PID-3.1", "PID-3[2].1", "PID-5.1",  "PID-5.2",  "PID-7",
    "PID-8",  "PV1-3.1", "OBR-4.1", "OBX-3.1",    "OBX[2]-5", "OBX[3]-6",
};
static hl7_path paths[20];

static size_t sink;

/* One pass over all messages; with_paths also reads the 20 paths of each. */
static void pass(hl7_msg_t *m, const corpus *c, int with_paths)
{
    for (size_t i = 0; i < c->count; i++) {
        px_error err;
        if (hl7_parse(m, c->msgs[i].ptr, c->msgs[i].len, 0, &err) != PX_OK)
            continue;
        sink += hl7_segment_count(m);
        if (with_paths) {
            for (int k = 0; k < 20; k++) {
                px_str v;
                if (hl7_path_get(m, &paths[k], &v))
                    sink += v.len;
            }
        }
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median seconds per pass over RUNS runs, each long enough to time well. */
static double median_pass_seconds(hl7_msg_t *m, const corpus *c, int with_paths)
{
    double t0 = now();
    pass(m, c, with_paths);
    double one = now() - t0;
    int passes = one > 0 ? (int)(MIN_RUN_SECONDS / one) + 1 : 1;
    double runs[RUNS];
    for (int r = 0; r < RUNS; r++) {
        double a = now();
        for (int p = 0; p < passes; p++)
            pass(m, c, with_paths);
        runs[r] = (now() - a) / passes;
    }
    qsort(runs, RUNS, sizeof(runs[0]), cmp_double);
    return runs[RUNS / 2];
}

static void report(const char *what, const char *path_name, const corpus *c, double seconds)
{
    printf("  %-30s %-7s %9.1f MB/s %11.0f msg/s\n", what, path_name,
           (double)c->bytes / seconds / 1e6, (double)c->count / seconds);
}

int main(int argc, char **argv)
{
    double started = now();
    const char *root = argc > 1 ? argv[1] : getenv("PX_CORPUS");
    if (root == NULL)
        root = "../shared/corpus";
    char dir[4096];
    struct stat st;
    int n = snprintf(dir, sizeof(dir), "%s/hl7v2", root);
    if (n < 0 || (size_t)n >= sizeof(dir) || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        n = snprintf(dir, sizeof(dir), "%s", root);
    if (n < 0 || (size_t)n >= sizeof(dir))
        return 1;

    for (int k = 0; k < 20; k++) {
        px_error err;
        if (hl7_path_parse(px_str_from_cstr(PATHS[k]), &paths[k], &err) != PX_OK) {
            fprintf(stderr, "hl7_parse: %s\n", err.msg);
            return 1;
        }
    }

    corpus gen = {0};
    gen.msgs = calloc(GENERATED, sizeof(*gen.msgs));
    if (gen.msgs == NULL)
        return 1;
    gen.cap = GENERATED;
    char *gen_data = generate(&gen);
    corpus real = {0};
    load_dir(&real, dir, 0);

    hl7_msg_t *simd = new_parser(0), *scalar = new_parser(1);
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    const char *simd_name = __builtin_cpu_supports("avx2") ? "avx2" : "(none)";
#else
    const char *simd_name = "(none)";
#endif

    printf("hl7_parse: full index (every segment and field boundary), median of %d runs\n", RUNS);
    printf("  generated: %zu ORU^R01 messages, %.2f MB, %.0f bytes on average\n", gen.count,
           (double)gen.bytes / 1e6, (double)gen.bytes / (double)gen.count);
    printf("  corpus:    %zu messages from %zu files under %s, %.2f MB\n", real.count, real.nfiles,
           dir, (double)real.bytes / 1e6);
    report("(a) generated ORU^R01", simd_name, &gen, median_pass_seconds(simd, &gen, 0));
    report("(a) generated ORU^R01", "scalar", &gen, median_pass_seconds(scalar, &gen, 0));
    if (real.count > 0) {
        report("(b) corpus", simd_name, &real, median_pass_seconds(simd, &real, 0));
        report("(b) corpus", "scalar", &real, median_pass_seconds(scalar, &real, 0));
    }
    report("(c) generated + 20 paths/msg", simd_name, &gen, median_pass_seconds(simd, &gen, 1));
    report("(c) generated + 20 paths/msg", "scalar", &gen, median_pass_seconds(scalar, &gen, 1));
    printf("  (checksum %zu, %.1f s)\n", sink, now() - started);

    hl7_msg_destroy(simd);
    hl7_msg_destroy(scalar);
    free(gen.msgs);
    px_free(gen_data);
    for (size_t i = 0; i < real.nfiles; i++)
        free(real.files[i]);
    free(real.files);
    free(real.msgs);
    return 0;
}
