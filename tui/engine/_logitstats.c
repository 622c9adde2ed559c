/* One fused pass over a step's logits: the statistics every token event carries (the peak, the
 * softmax normalizer and the entropy) and the top-N candidates (found among the tokens near the
 * peak), instead of the numpy passes over the whole vocabulary that sampling_math falls back to.
 * On a 262k-token vocabulary those cost about 0.8 ms a token inside the decode loop (their work
 * arrays cold after each llama_decode); this pass costs about a fifth of that.
 *
 *     stats(logits, margin, best) -> (peak, z, ws, n_near)
 *
 * logits: a C-contiguous float32 buffer. With s = max(x - peak, -104):
 *     z  = sum(exp(s))        (sums in float64)
 *     ws = sum(exp(s) * s)    so that entropy = log(z) - ws / z (nats), log-normalizer = peak + log(z)
 * best: a writable int32 buffer of k ids. n_near tokens have x >= peak - margin; the k largest of them
 * (all of them if fewer) are written to best, largest logit first, ties by lower id: when n_near >= k
 * these are exactly the top k of the whole vocabulary. A NaN anywhere gives a NaN peak (the caller then
 * uses numpy, which says what NaN logits mean there).
 *
 * exp is a Cephes-style polynomial (about 1 ulp, as numpy's float32 exp) so that the loop vectorizes;
 * on x86-64 Linux each function is compiled for AVX-512, AVX2 and the baseline, and the loader picks the
 * one this CPU runs (never an instruction it lacks: the same rule as install.sh's llama.cpp flags).
 * The GIL is released meanwhile.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#endif

/* GCC/clang vector extensions: 16 floats, lowered to one AVX-512 register, two AVX2 ones or four SSE2. */
typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));
#define LANES 16
#define SUB 256   /* elements per check for tokens near the peak */

/* Macros, not functions: a function taking or returning these vectors makes GCC warn about its ABI. */
#define LOAD(v, p) memcpy(&(v), (p), sizeof(v))

#define PICK(mask, yes, no) ((vf)(((vi)(yes) & (mask)) | ((vi)(no) & ~(mask))))

CLONES static float peak_of(const float *x, Py_ssize_t n, int *has_nan) {
    vf m = (vf){0} - INFINITY;
    vi bad = (vi){0};
    Py_ssize_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        vf v;
        LOAD(v, x + i);
        m = PICK(v > m, v, m);
        bad |= v != v;
    }
    float r = -INFINITY;
    int nan = 0;
    for (int j = 0; j < LANES; j++) {
        r = m[j] > r ? m[j] : r;
        nan |= bad[j] != 0;
    }
    for (; i < n; i++) {
        r = x[i] > r ? x[i] : r;
        nan |= x[i] != x[i];
    }
    *has_nan = nan;
    return r;
}

/* w = exp(s) for s in [-104, 0]: 0 where float32's exp leaves the normal range (below -87). A Cephes-style
 * polynomial after s = k ln 2 + r; 1.5 * 2^23 added rounds s / ln 2 to the integer k in the low bits. */
#define EXP_NEG(w, s)                                                       \
    do {                                                                    \
        vf t_ = (s) * 1.44269504088896341f + 12582912.0f;                   \
        vf k_ = t_ - 12582912.0f;                                           \
        vi ki_ = (vi)t_ - 0x4B400000; /* minus the bits of 1.5 * 2^23 */    \
        vf r_ = (s) - k_ * 0.693359375f;                                    \
        r_ = r_ - k_ * -2.12194440e-4f;                                     \
        vf p_ = r_ * 1.9875691500e-4f + 1.3981999507e-3f;                   \
        p_ = p_ * r_ + 8.3334519073e-3f;                                    \
        p_ = p_ * r_ + 4.1665795894e-2f;                                    \
        p_ = p_ * r_ + 1.6666665459e-1f;                                    \
        p_ = p_ * r_ + 5.0000001201e-1f;                                    \
        p_ = p_ * r_ * r_ + r_ + 1.0f;                                      \
        (w) = (vf)((vi)(p_ * (vf)((ki_ + 127) << 23)) & ~((s) < -87.0f));   \
    } while (0)

static float exp_neg1(float s) {
    vf v = (vf){0} + s, w; /* the same polynomial, one lane used */
    EXP_NEG(w, v);
    return w[0];
}

/* The best tokens seen so far: ids[0..*filled) by logit, largest first, ties by lower id (ids come in
 * increasing order, so an equal logit never moves ahead of one already kept). */
typedef struct {
    int32_t *ids;
    float *vals;
    Py_ssize_t cap;
    Py_ssize_t filled;
    Py_ssize_t count; /* every token at or above the threshold, kept or not */
} Best;

static void collect(const float *x, Py_ssize_t from, Py_ssize_t to, float threshold, Best *best) {
    for (Py_ssize_t i = from; i < to; i++) {
        float v = x[i];
        if (!(v >= threshold)) continue;
        best->count++;
        if (best->filled == best->cap && !(v > best->vals[best->cap - 1])) continue;
        Py_ssize_t j = best->filled < best->cap ? best->filled++ : best->cap - 1;
        while (j > 0 && best->vals[j - 1] < v) {
            best->vals[j] = best->vals[j - 1];
            best->ids[j] = best->ids[j - 1];
            j--;
        }
        best->vals[j] = v;
        best->ids[j] = (int32_t)i;
    }
}

/* sum += v with Kahan's compensation in every lane: a float32 lane that holds the peak's 1.0 would
 * otherwise round away most of each small term added to it (on a 4k vocabulary of equal tails that
 * cost 1e-6 of the normalizer); compensated, the sums are good to a few float32 ulps whatever n is. */
#define KAHAN(sum, comp, v)                \
    do {                                   \
        vf y_ = (v) - (comp);              \
        vf t_ = (sum) + y_;                \
        (comp) = (t_ - (sum)) - y_;        \
        (sum) = t_;                        \
    } while (0)

CLONES static void sums_and_best(const float *x, Py_ssize_t n, float peak, float threshold, Best *best,
                                 double *z_out, double *ws_out) {
    vf z_sum = (vf){0}, z_comp = (vf){0}, w_sum = (vf){0}, w_comp = (vf){0};
    Py_ssize_t i = 0;
    const Py_ssize_t whole = n - n % SUB;
    for (; i < whole; i += SUB) {
        vi any = (vi){0};
        for (Py_ssize_t k = i; k < i + SUB; k += LANES) {
            vf v;
            LOAD(v, x + k);
            vf s = v - peak;
            s = PICK(s < -104.0f, (vf){0} - 104.0f, s);
            vf w;
            EXP_NEG(w, s);
            vf ws = w * s;
            KAHAN(z_sum, z_comp, w);
            KAHAN(w_sum, w_comp, ws);
            any |= v >= threshold;
        }
        int hit = 0;
        for (int j = 0; j < LANES; j++) hit |= any[j] != 0;
        if (hit) collect(x, i, i + SUB, threshold, best);
    }
    double z = 0.0, ws = 0.0;
    for (int j = 0; j < LANES; j++) {
        z += (double)z_sum[j] - (double)z_comp[j];
        ws += (double)w_sum[j] - (double)w_comp[j];
    }
    for (; i < n; i++) {
        float s = x[i] - peak;
        s = s < -104.0f ? -104.0f : s;
        float w = exp_neg1(s);
        z += (double)w;
        ws += (double)(w * s);
    }
    collect(x, whole, n, threshold, best);
    *z_out = z;
    *ws_out = ws;
}

static PyObject *stats(PyObject *self, PyObject *args) {
    Py_buffer logits, ids;
    double margin;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*dw*", &logits, &margin, &ids)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t cap = ids.len / (Py_ssize_t)sizeof(int32_t);
    float *vals = NULL;
    if (logits.len % (Py_ssize_t)sizeof(float) != 0 || ids.len % (Py_ssize_t)sizeof(int32_t) != 0 || cap < 1) {
        PyErr_SetString(PyExc_ValueError, "stats: logits must be float32, ids int32 with room for one");
    } else if ((vals = PyMem_Malloc((size_t)cap * sizeof(float))) == NULL) {
        PyErr_NoMemory();
    } else {
        const float *x = (const float *)logits.buf;
        Py_ssize_t n = logits.len / (Py_ssize_t)sizeof(float);
        Best best = {(int32_t *)ids.buf, vals, cap, 0, 0};
        int has_nan = 0;
        float peak = -INFINITY;
        double z = 0.0, ws = 0.0;
        Py_BEGIN_ALLOW_THREADS
        peak = peak_of(x, n, &has_nan);
        if (!has_nan && isfinite(peak)) sums_and_best(x, n, peak, (float)(peak - margin), &best, &z, &ws);
        Py_END_ALLOW_THREADS
        if (has_nan) peak = NAN;
        result = Py_BuildValue("dddn", (double)peak, z, ws, best.count);
    }
    PyMem_Free(vals);
    PyBuffer_Release(&logits);
    PyBuffer_Release(&ids);
    return result;
}

static PyMethodDef methods[] = {
    {"stats", stats, METH_VARARGS, "stats(logits, margin, best) -> (peak, z, ws, n_near); see the module source."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_logitstats", "A fused statistics pass over one step's logits.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__logitstats(void) { return PyModule_Create(&module); }
