/* cpu.c: CPU feature detection, instruction-set choice, thread count, status strings.
 * The build uses no -march flags; af_init and af_set_isa choose the kernel table of one path here,
 * and only here (isa_ctx.h). ANNFAST_ISA=generic|avx2|avx512 forces a path; ANNFAST_NUM_THREADS /
 * OMP_NUM_THREADS set threads (capped at the CPUs; threads.c decides when fewer can run). */
#include "annfast.h"
#include "isa_ctx.h"
#include "pool.h"
#include "threads.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#define AF_X86 1
#else
#define AF_X86 0
#endif

/* The table of the path in use (isa_ctx.h): written by af_init and af_set_isa only. */
const af_kernels *af_isa_cur = NULL;
static int g_threads = 1;
static int g_ready = 0;

const char *af_status_str(af_status s)
{
    switch (s) {
    case AF_OK: return "ok";
    case AF_EINVAL: return "invalid argument";
    case AF_ESHAPE: return "inconsistent shape or size overflow";
    case AF_ENOMEM: return "out of memory";
    case AF_ENONFINITE: return "non-finite value";
    case AF_EINTR: return "interrupted";
    case AF_EISA: return "instruction set not supported";
    }
    return "unknown status";
}

af_status af_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return AF_ESHAPE;
    *out = a * b;
    return AF_OK;
}

int af_cpu_has(af_isa isa)
{
    if (!af_isa_table(isa)) return 0; /* not in this build */
    switch (isa) {
    case AF_ISA_GENERIC: return 1;
#if AF_X86 && (defined(__GNUC__) || defined(__clang__))
    /* __builtin_cpu_supports also checks that the OS saves the wider registers (XCR0). */
    case AF_ISA_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case AF_ISA_AVX512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2")
                               && __builtin_cpu_supports("fma");
#endif
    default: return 0;
    }
}

af_isa af_best_isa(void)
{
    if (af_cpu_has(AF_ISA_AVX512)) return AF_ISA_AVX512;
    if (af_cpu_has(AF_ISA_AVX2)) return AF_ISA_AVX2;
    return AF_ISA_GENERIC;
}

const char *af_isa_name(af_isa isa)
{
    switch (isa) {
    case AF_ISA_GENERIC: return "generic";
    case AF_ISA_AVX2: return "avx2";
    case AF_ISA_AVX512: return "avx512";
    }
    return "unknown";
}

int af_num_procs(void)
{
#ifdef _OPENMP
    return omp_get_num_procs();
#else
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
#endif
}

static int env_int(const char *name)
{
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end = NULL;
    long v = strtol(s, &end, 10);
    return (end && *end == '\0' && v > 0 && v < 4096) ? (int)v : 0;
}

void af_init(void)
{
    if (g_ready) return;
    af_isa isa = af_best_isa();
    const char *s = getenv("ANNFAST_ISA");
    if (s && *s) {
        for (int i = AF_ISA_GENERIC; i <= AF_ISA_AVX512; i++)
            if (strcasecmp(s, af_isa_name((af_isa)i)) == 0 && af_cpu_has((af_isa)i)) isa = (af_isa)i;
    }
    af_isa_cur = af_isa_table(isa);
    int t = env_int("ANNFAST_NUM_THREADS");
    if (!t) t = env_int("OMP_NUM_THREADS");
    if (!t || t > af_num_procs()) t = af_num_procs();  /* more threads than CPUs never help */
    g_threads = t;
    af_threads_setup();  /* at-fork handler (threads.c) */
    g_ready = 1;
}

af_status af_set_isa(af_isa isa)
{
    af_init();
    if ((int)isa < AF_ISA_GENERIC || (int)isa > AF_ISA_AVX512) return AF_EINVAL;
    if (!af_cpu_has(isa)) return AF_EISA;
    af_isa_cur = af_isa_table(isa); /* a plain store: never while a kernel runs (isa_ctx.h) */
    return AF_OK;
}

af_isa af_get_isa(void)
{
    af_init();
    return af_isa_cur->isa;
}

af_status af_set_num_threads(int n)
{
    af_init();
    if (n < 1 || n > 4096) return AF_EINVAL;
    g_threads = n > af_num_procs() ? af_num_procs() : n;  /* capped at the CPUs */
    af_threads_reset();
    return AF_OK;
}

int af_threads_setting(void)
{
    af_init();
#ifdef _OPENMP
    return g_threads;
#else
    return 1;
#endif
}

/* The team size for the caller's next parallel region: the setting, or 1 where threads cannot
 * start (fork child, thread creation failing; threads.c) and where the pool would run a job on
 * the caller alone (af_pool_threads: inside a pool job or a step the thread timing runs alone,
 * where a region would add a team of its own to the pool's threads, and on a crowded machine,
 * where its barrier would wait for a thread that lost its core). */
int af_get_num_threads(void)
{
    int n = af_threads_for(af_threads_setting());
    return n > 1 ? af_pool_threads(n) : n;
}

static void probe_chunk(void *ctx, size_t i, size_t slot)
{
    (void)slot;
    if (i == 0) *(int *)ctx = af_get_num_threads();
}

void af_num_threads_probe(int out[3])
{
    out[0] = af_get_num_threads();
    int prev = af_pool_solo(1);
    out[1] = af_get_num_threads();
    af_pool_solo(prev);
    out[2] = -1;
    af_pool_run(probe_chunk, &out[2], 2, 2);
}

int af_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

#ifndef ANNFAST_COMPILER
#define ANNFAST_COMPILER "unknown"
#endif
const char *af_compiler(void) { return ANNFAST_COMPILER; }

void af_cpu_features(char *buf, size_t len)
{
    if (!buf || len == 0) return;
    buf[0] = '\0';
#if AF_X86 && (defined(__GNUC__) || defined(__clang__))
    static const char *names[] = {"sse2", "sse4.2", "avx", "avx2", "fma", "avx512f", "avx512dq",
                                  "avx512bw", "avx512vl"};
    size_t used = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int has = 0;
        /* __builtin_cpu_supports needs a string literal, hence the switch. */
        switch (i) {
        case 0: has = __builtin_cpu_supports("sse2"); break;
        case 1: has = __builtin_cpu_supports("sse4.2"); break;
        case 2: has = __builtin_cpu_supports("avx"); break;
        case 3: has = __builtin_cpu_supports("avx2"); break;
        case 4: has = __builtin_cpu_supports("fma"); break;
        case 5: has = __builtin_cpu_supports("avx512f"); break;
        case 6: has = __builtin_cpu_supports("avx512dq"); break;
        case 7: has = __builtin_cpu_supports("avx512bw"); break;
        case 8: has = __builtin_cpu_supports("avx512vl"); break;
        }
        if (!has) continue;
        size_t l = strlen(names[i]);
        if (used + l + 2 > len) break;
        if (used) buf[used++] = ' ';
        memcpy(buf + used, names[i], l + 1);
        used += l;
    }
#endif
}
