/*
 * closure_host.c -- a Lorenz-96 host model in C that calls a learned closure exported with
 * surrogates.coupling.export_onnx, through ONNX Runtime's C API. It knows nothing of Python.
 *
 *   dX_k/dt = X_{k-1} (X_{k+1} - X_{k-2}) - X_k + F + c_k(X),   k = 0 .. K-1 (periodic),
 *
 * advanced by classical RK4 in float32, the closure c evaluated at every stage: the same scheme
 * and operation order as operators.mno.HybridLorenz96.rollout.
 *
 * The export contract (see the sidecar MODEL.onnx.json): one input "X", float32 (batch, K),
 * one output "closure", float32 (batch, K), row-major, both axes dynamic.
 *
 * Usage
 *   closure_host MODEL.onnx run   B K N_STEPS DT F X0.bin OUT.bin
 *       X0.bin: B*K float32 (row-major); OUT.bin: the trajectory, B*(N_STEPS+1)*K float32,
 *       element [b, n, k] at offset (b*(N_STEPS+1) + n)*K + k.
 *   closure_host MODEL.onnx bench B K MIN_SECONDS
 *       Times closure evaluations on a fixed batch for at least MIN_SECONDS and prints one line
 *       "calls=<n> seconds=<s> calls_per_s=<r>".
 *
 * Build (see Makefile): cc -O2 -std=c11 -I<onnxruntime headers> closure_host.c
 *       -L<dir with libonnxruntime.so.1> -l:libonnxruntime.so.1 -Wl,-rpath,<same dir> -lm
 * Exit status: 0 on success, 1 on bad usage or I/O errors, 2 on ONNX Runtime errors.
 */
#define _POSIX_C_SOURCE 199309L
#include <onnxruntime_c_api.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const OrtApi *ort;

#define ORT_CHECK(expr)                                                                \
    do {                                                                               \
        OrtStatus *status_ = (expr);                                                   \
        if (status_ != NULL) {                                                         \
            fprintf(stderr, "onnxruntime error: %s\n", ort->GetErrorMessage(status_)); \
            ort->ReleaseStatus(status_);                                               \
            exit(2);                                                                   \
        }                                                                              \
    } while (0)

typedef struct {
    OrtEnv *env;
    OrtSession *session;
    OrtMemoryInfo *memory;
    char *input_name;
    char *output_name;
} Closure;

static void die(const char *message) {
    fprintf(stderr, "closure_host: %s\n", message);
    exit(1);
}

static void *checked_malloc(size_t n) {
    void *p = malloc(n);
    if (p == NULL) die("out of memory");
    return p;
}

static void closure_open(Closure *c, const char *model_path) {
    OrtAllocator *allocator;
    OrtSessionOptions *options;
    size_t n_inputs, n_outputs;
    memset(c, 0, sizeof *c);
    ORT_CHECK(ort->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "closure_host", &c->env));
    ORT_CHECK(ort->CreateSessionOptions(&options));
    ORT_CHECK(ort->CreateSession(c->env, model_path, options, &c->session));
    ort->ReleaseSessionOptions(options);
    ORT_CHECK(ort->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &c->memory));
    ORT_CHECK(ort->SessionGetInputCount(c->session, &n_inputs));
    ORT_CHECK(ort->SessionGetOutputCount(c->session, &n_outputs));
    if (n_inputs != 1 || n_outputs != 1) die("the model must have one input and one output");
    ORT_CHECK(ort->GetAllocatorWithDefaultOptions(&allocator));
    ORT_CHECK(ort->SessionGetInputName(c->session, 0, allocator, &c->input_name));
    ORT_CHECK(ort->SessionGetOutputName(c->session, 0, allocator, &c->output_name));
}

static void closure_close(Closure *c) {
    OrtAllocator *allocator;
    ORT_CHECK(ort->GetAllocatorWithDefaultOptions(&allocator));
    ORT_CHECK(ort->AllocatorFree(allocator, c->input_name));
    ORT_CHECK(ort->AllocatorFree(allocator, c->output_name));
    ort->ReleaseMemoryInfo(c->memory);
    ort->ReleaseSession(c->session);
    ort->ReleaseEnv(c->env);
}

/* out[b*K + k] = c_k(X[b, :]); both buffers are the caller's (no copies). */
static void closure_eval(const Closure *c, const float *X, float *out, int64_t B, int64_t K) {
    const int64_t shape[2] = {B, K};
    const size_t bytes = (size_t)(B * K) * sizeof(float);
    OrtValue *input = NULL, *output = NULL;
    const char *input_names[1] = {c->input_name};
    const char *output_names[1] = {c->output_name};
    ORT_CHECK(ort->CreateTensorWithDataAsOrtValue(c->memory, (void *)X, bytes, shape, 2,
                                                  ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &input));
    /* A non-NULL output value is used as pre-allocated output storage. */
    ORT_CHECK(ort->CreateTensorWithDataAsOrtValue(c->memory, out, bytes, shape, 2,
                                                  ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &output));
    ORT_CHECK(ort->Run(c->session, NULL, input_names, (const OrtValue *const *)&input, 1,
                       output_names, 1, &output));
    ort->ReleaseValue(input);
    ort->ReleaseValue(output);
}

/* g = f(X; F) + c(X) for a batch of B rings of K points. */
static void tendency(const Closure *c, const float *X, float *g, int64_t B, int64_t K,
                     float F) {
    closure_eval(c, X, g, B, K);
    for (int64_t b = 0; b < B; ++b) {
        const float *x = X + b * K;
        float *gb = g + b * K;
        for (int64_t k = 0; k < K; ++k) {
            const float xm1 = x[(k + K - 1) % K], xp1 = x[(k + 1) % K], xm2 = x[(k + K - 2) % K];
            const float coarse = xm1 * (xp1 - xm2) - x[k] + F;
            gb[k] = coarse + gb[k];
        }
    }
}

static int run(const Closure *c, int64_t B, int64_t K, long n_steps, float dt, float F,
               const char *x0_path, const char *out_path) {
    const size_t n = (size_t)(B * K);
    float *X = checked_malloc(n * sizeof(float)), *tmp = checked_malloc(n * sizeof(float));
    float *k1 = checked_malloc(n * sizeof(float)), *k2 = checked_malloc(n * sizeof(float));
    float *k3 = checked_malloc(n * sizeof(float)), *k4 = checked_malloc(n * sizeof(float));
    float *traj = checked_malloc(n * (size_t)(n_steps + 1) * sizeof(float));
    const float half_dt = 0.5f * dt, sixth_dt = dt / 6.0f;
    FILE *fh = fopen(x0_path, "rb");
    if (fh == NULL) die("cannot open the initial state file");
    if (fread(X, sizeof(float), n, fh) != n) die("the initial state file holds fewer than B*K floats");
    fclose(fh);
    for (long step = 0; step <= n_steps; ++step) {
        for (int64_t b = 0; b < B; ++b)
            memcpy(traj + ((size_t)b * (size_t)(n_steps + 1) + (size_t)step) * (size_t)K,
                   X + b * K, (size_t)K * sizeof(float));
        if (step == n_steps) break;
        tendency(c, X, k1, B, K, F);
        for (size_t i = 0; i < n; ++i) tmp[i] = X[i] + half_dt * k1[i];
        tendency(c, tmp, k2, B, K, F);
        for (size_t i = 0; i < n; ++i) tmp[i] = X[i] + half_dt * k2[i];
        tendency(c, tmp, k3, B, K, F);
        for (size_t i = 0; i < n; ++i) tmp[i] = X[i] + dt * k3[i];
        tendency(c, tmp, k4, B, K, F);
        for (size_t i = 0; i < n; ++i)
            X[i] = X[i] + sixth_dt * (k1[i] + 2.0f * k2[i] + 2.0f * k3[i] + k4[i]);
    }
    fh = fopen(out_path, "wb");
    if (fh == NULL) die("cannot open the output file");
    if (fwrite(traj, sizeof(float), n * (size_t)(n_steps + 1), fh) != n * (size_t)(n_steps + 1))
        die("short write to the output file");
    fclose(fh);
    free(X); free(tmp); free(k1); free(k2); free(k3); free(k4); free(traj);
    return 0;
}

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int bench(const Closure *c, int64_t B, int64_t K, double min_seconds) {
    const size_t n = (size_t)(B * K);
    float *X = checked_malloc(n * sizeof(float)), *out = checked_malloc(n * sizeof(float));
    long calls = 0, batch = 1;
    double start, elapsed;
    uint32_t state = 12345u;
    for (size_t i = 0; i < n; ++i) { /* deterministic states of size ~5 */
        state = state * 1664525u + 1013904223u;
        X[i] = 10.0f * ((float)(state >> 8) / 16777216.0f - 0.5f);
    }
    for (int i = 0; i < 3; ++i) closure_eval(c, X, out, B, K); /* warm-up */
    start = now_seconds();
    do {
        for (long i = 0; i < batch; ++i) closure_eval(c, X, out, B, K);
        calls += batch;
        batch *= 2;
        elapsed = now_seconds() - start;
    } while (elapsed < min_seconds);
    printf("calls=%ld seconds=%.6f calls_per_s=%.3f\n", calls, elapsed, (double)calls / elapsed);
    free(X); free(out);
    return 0;
}

int main(int argc, char **argv) {
    Closure c;
    int status;
    const OrtApiBase *base = OrtGetApiBase();
    if (argc < 3) die("usage: closure_host MODEL.onnx run|bench ...");
    /* Ask for the API version of the headers this host was built with; later libraries keep
     * every earlier version of the function table. */
    ort = base->GetApi(ORT_API_VERSION);
    if (ort == NULL) {
        fprintf(stderr, "closure_host: the ONNX Runtime library (%s) does not provide C API "
                        "version %d\n", base->GetVersionString(), ORT_API_VERSION);
        return 2;
    }
    if (argc >= 5 && (atoll(argv[3]) < 1 || atoll(argv[4]) < 4)) die("B must be >= 1 and K >= 4");
    if (strcmp(argv[2], "run") == 0) {
        if (argc != 10 || atol(argv[5]) < 0) die("usage: closure_host MODEL.onnx run B K N_STEPS DT F X0.bin OUT.bin");
        closure_open(&c, argv[1]);
        status = run(&c, atoll(argv[3]), atoll(argv[4]), atol(argv[5]), strtof(argv[6], NULL),
                     strtof(argv[7], NULL), argv[8], argv[9]);
    } else if (strcmp(argv[2], "bench") == 0) {
        if (argc != 6) die("usage: closure_host MODEL.onnx bench B K MIN_SECONDS");
        closure_open(&c, argv[1]);
        status = bench(&c, atoll(argv[3]), atoll(argv[4]), atof(argv[5]));
    } else {
        die("the mode must be 'run' or 'bench'");
        return 1;
    }
    closure_close(&c);
    return status;
}
