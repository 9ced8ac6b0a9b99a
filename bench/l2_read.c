/* Single-core read bandwidth of a buffer that fits in L2 but not in L1: the bound of a batch-1
 * inference step, which streams every weight once per step (W5b: LSTM I=28 H=128 + Linear(128->10),
 * 4*128*(28+128) + 10*128 floats = 324,608 bytes). Beside bench/fma_peak.c, which bounds compute.
 *
 *   gcc -O3 -funroll-loops bench/l2_read.c -o /tmp/l2_read && /tmp/l2_read [BYTES] [--json]
 *
 * The buffer is read front to back again and again with 8 independent vector accumulators (AVX2:
 * 32-byte loads; AVX-512: 64-byte loads), the best of 7 runs of ~0.8 GB each. (-O3 keeps the
 * accumulators in registers, as in fma_peak.c.) */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

__attribute__((target("avx2"))) static float read_avx2(const float *p, long n, long reps) {
    __m256 a[8];
    for (int i = 0; i < 8; i++) a[i] = _mm256_setzero_ps();
    for (long r = 0; r < reps; r++)
        for (long k = 0; k + 64 <= n; k += 64)
            for (int i = 0; i < 8; i++) a[i] = _mm256_add_ps(a[i], _mm256_load_ps(p + k + 8 * i));
    float v[8], s = 0;
    for (int i = 0; i < 8; i++) { _mm256_storeu_ps(v, a[i]); s += v[0]; }
    return s;
}

__attribute__((target("avx512f"))) static float read_avx512(const float *p, long n, long reps) {
    __m512 a[8];
    for (int i = 0; i < 8; i++) a[i] = _mm512_setzero_ps();
    for (long r = 0; r < reps; r++)
        for (long k = 0; k + 128 <= n; k += 128)
            for (int i = 0; i < 8; i++) a[i] = _mm512_add_ps(a[i], _mm512_load_ps(p + k + 16 * i));
    float s = 0;
    for (int i = 0; i < 8; i++) s += _mm512_reduce_add_ps(a[i]);
    return s;
}

/* Best GB/s of 7 runs of `reps` passes. */
static double best(float (*f)(const float *, long, long), const float *p, long n, long reps) {
    double top = 0;
    volatile float sink = 0;
    for (int run = 0; run < 7; run++) {
        double t = now();
        sink += f(p, n, reps);
        t = now() - t;
        double gbs = (double)(n - n % 128) * 4 * reps / t / 1e9;
        if (gbs > top) top = gbs;
    }
    (void)sink;
    return top;
}

int main(int argc, char **argv) {
    long bytes = 324608;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = 1;
        else if ((bytes = atol(argv[i])) < 4096) {
            fprintf(stderr, "error: BYTES must be a number >= 4096\n");
            return 2;
        }
    }
    long n = bytes / 4;
    float *p = aligned_alloc(64, (size_t)((n + 127) / 128 * 128) * 4);
    if (!p) { fprintf(stderr, "error: out of memory\n"); return 1; }
    for (long i = 0; i < n; i++) p[i] = 1e-9f * (float)(i % 97);
    long reps = 200000000L / n + 1; /* ~0.8 GB per run */
    __builtin_cpu_init();
    double a2 = best(read_avx2, p, n, reps);
    double a5 = __builtin_cpu_supports("avx512f") ? best(read_avx512, p, n, reps) : 0;
    if (json)
        printf("{\"impl\":\"l2_read\",\"bytes\":%ld,\"avx2_gbps\":%.1f,\"avx512_gbps\":%.1f}\n", bytes, a2, a5);
    else
        printf("read bandwidth, 1 core, %ld bytes: AVX2 %.1f GB/s, AVX-512 %.1f GB/s\n", bytes, a2, a5);
    free(p);
    return 0;
}
