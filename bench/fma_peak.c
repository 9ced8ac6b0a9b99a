/* Single-core f32 FMA throughput of this CPU with 256-bit (AVX2) and 512-bit (AVX-512) vectors:
 * 12 independent accumulator chains, so the loop is bound by FMA throughput, not latency.
 * Tells how far a kernel is from the machine's peak, and what 16-lane kernels could gain.
 *
 *   gcc -O3 -funroll-loops bench/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak [--json]
 *
 * (Needs a CPU with AVX-512F for the second figure; -O3 keeps the accumulators in registers.) */
#include <immintrin.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

__attribute__((target("avx2,fma"))) static double avx2(long n) {
    __m256 a[12], b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    double t = now();
    for (long k = 0; k < n; k++)
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
    t = now() - t;
    float v[8], s = 0;
    for (int i = 0; i < 12; i++) { _mm256_storeu_ps(v, a[i]); s += v[0]; }
    if (s == 12345.f) printf(" ");
    return n * 12.0 * 8 * 2 / t / 1e9;
}

__attribute__((target("avx512f"))) static double avx512(long n) {
    __m512 a[12], b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    double t = now();
    for (long k = 0; k < n; k++)
        for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    t = now() - t;
    float s = 0;
    for (int i = 0; i < 12; i++) s += _mm512_reduce_add_ps(a[i]);
    if (s == 12345.f) printf(" ");
    return n * 12.0 * 16 * 2 / t / 1e9;
}

int main(int argc, char **argv) {
    __builtin_cpu_init();
    if (argc > 1 && strcmp(argv[1], "--json") == 0) {
        /* One line for bench/compare.sh: the best of three runs of each. */
        double a2 = 0, a5 = 0;
        for (int r = 0; r < 3; r++) {
            double v = avx2(200000000);
            if (v > a2) a2 = v;
            if (__builtin_cpu_supports("avx512f") && (v = avx512(200000000)) > a5) a5 = v;
        }
        printf("{\"impl\":\"fma_peak\",\"avx2_gflops\":%.1f,\"avx512_gflops\":%.1f}\n", a2, a5);
        return 0;
    }
    for (int r = 0; r < 3; r++) {
        printf("f32 FMA peak, 1 core: AVX2 %.1f GFLOP/s", avx2(200000000));
        if (__builtin_cpu_supports("avx512f")) printf(", AVX-512 %.1f GFLOP/s", avx512(200000000));
        printf("\n");
    }
    return 0;
}
