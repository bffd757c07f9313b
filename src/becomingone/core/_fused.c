/* becomingone.core._fused: the KAIROS sums at omega = 0 in one fused pass (docs/kairos.md).
 *
 * Job: for a C-contiguous phase matrix phi of `rows` x `cols` float64 (or complex128) values
 * and a lag of L rows, with d[n] = phi[n+1] - phi[n] (n = 0 .. M-1, M = rows - 1), return
 *
 *     (energy, a, b, total)
 *     energy = sum_{n<M}      |d[n]|^2         (every difference: a non-finite phi shows here)
 *     a      = sum_{n=L}^{M-1} |d[n]|^2        ("now" energy)
 *     b      = sum_{n<M-L}    |d[n]|^2         ("past" energy)
 *     total  = sum_{n=L}^{M-1} <d[n], d[n-L]>  = np.vdot(d[:M-L], d[L:])  (a complex)
 *
 * the same sums as the NumPy path in becomingone.core.kernels, up to rounding (the order of
 * the additions differs). No differences array is written: each difference is recomputed from
 * phi where it is read.
 *
 * Rule: C99 with GCC/clang vector extensions and the limited Python C API (buffer protocol, no NumPy headers); no
 * -ffast-math (NaN and inf must propagate as in NumPy); no -march. The portable loops
 * vectorise for the baseline ISA (SSE2 on x86-64, NEON on aarch64) through an `omp simd`
 * reduction (-fopenmp-simd; real phi) and two-lane vector extensions (complex phi); on x86-64
 * an AVX2 + FMA variant is chosen at import when the CPU has it (the module's ISA attribute
 * says which), so one wheel runs on any such CPU.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define FUSED_X86 1
#define AVX2 __attribute__((target("avx2,fma")))
#endif

#if !(defined(__GNUC__) || defined(__clang__))
#error "_fused.c needs GCC or clang (vector extensions); without it NumPy is used"
#endif

/* The portable loops are inlined into each ISA variant, so each is compiled for that ISA. */
#define BODY static inline __attribute__((always_inline))

typedef struct {
    double energy, a, b, re, im;
} sums_t;

/* The loops below take phi flat: differences are `step` values apart (one row), the "now"
 * differences `shift` values after the "past" ones (L rows); `count` pairs, `total` differences
 * in all. Complex phi is read as interleaved (re, im) doubles; the counts are in values. */

/* Energy of the differences count .. total-1 (the last L rows, which only "now" reads). */
BODY double tail_energy(const double *x, Py_ssize_t from, Py_ssize_t to, Py_ssize_t step) {
    double tail = 0.0;
#pragma omp simd reduction(+ : tail)
    for (Py_ssize_t j = from; j < to; j++) {
        double p = x[j + step] - x[j];
        tail += p * p;
    }
    return tail;
}

/* Real phi (also any ISA: the compiler vectorises the reduction through `omp simd`). */
BODY void sums_real_body(const double *x, Py_ssize_t count, Py_ssize_t step, Py_ssize_t shift,
                         Py_ssize_t total, sums_t *out) {
    double a = 0.0, b = 0.0, re = 0.0;
    const double *now = x + shift;
#pragma omp simd reduction(+ : a, b, re) simdlen(8)
    for (Py_ssize_t j = 0; j < count; j++) {
        double p = x[j + step] - x[j];
        double q = now[j + step] - now[j];
        a += q * q;
        b += p * p;
        re += p * q;
    }
    out->energy = b + tail_energy(x, count, total, step);
    out->a = a;
    out->b = b;
    out->re = re;
    out->im = 0.0;
}

static void sums_real(const double *x, Py_ssize_t count, Py_ssize_t step, Py_ssize_t shift,
                      Py_ssize_t total, sums_t *out) {
    sums_real_body(x, count, step, shift, total, out);
}

/* Complex phi, portable form: one complex value per two-lane vector (GCC/clang vector
 * extensions: SSE2 on x86-64, NEON on aarch64, scalar code elsewhere), two vectors per step.
 * (count, step, shift, total) in complex values; as in the AVX2 form, lanes (pr*qi, pi*qr) of
 * the imaginary accumulator are summed with signs (+, -). */
typedef double v2d __attribute__((vector_size(16)));

BODY v2d load2(const double *p) {
    v2d v;
    memcpy(&v, p, sizeof v);
    return v;
}

BODY v2d swap2(v2d v) { return (v2d){v[1], v[0]}; }

static void sums_complex(const double *x, Py_ssize_t count, Py_ssize_t step, Py_ssize_t shift,
                         Py_ssize_t total, sums_t *out) {
    const double *now = x + 2 * shift;
    const Py_ssize_t s = 2 * step, n = 2 * count;
    v2d a0 = {0.0, 0.0}, a1 = a0, b0 = a0, b1 = a0, r0 = a0, r1 = a0, i0 = a0, i1 = a0;
    Py_ssize_t j = 0;
    for (; j + 4 <= n; j += 4) {
        v2d p0 = load2(x + j + s) - load2(x + j), p1 = load2(x + j + s + 2) - load2(x + j + 2);
        v2d q0 = load2(now + j + s) - load2(now + j);
        v2d q1 = load2(now + j + s + 2) - load2(now + j + 2);
        a0 += q0 * q0;
        a1 += q1 * q1;
        b0 += p0 * p0;
        b1 += p1 * p1;
        r0 += p0 * q0;
        r1 += p1 * q1;
        i0 += p0 * swap2(q0);
        i1 += p1 * swap2(q1);
    }
    if (j < n) { /* an odd count: one complex value left */
        v2d p0 = load2(x + j + s) - load2(x + j), q0 = load2(now + j + s) - load2(now + j);
        a0 += q0 * q0;
        b0 += p0 * p0;
        r0 += p0 * q0;
        i0 += p0 * swap2(q0);
    }
    a0 += a1;
    b0 += b1;
    r0 += r1;
    i0 += i1;
    out->energy = (b0[0] + b0[1]) + tail_energy(x, n, 2 * total, s);
    out->a = a0[0] + a0[1];
    out->b = b0[0] + b0[1];
    out->re = r0[0] + r0[1];
    out->im = i0[0] - i0[1];
}

#ifdef FUSED_X86
AVX2 static void sums_real_avx2(const double *x, Py_ssize_t count, Py_ssize_t step,
                                Py_ssize_t shift, Py_ssize_t total, sums_t *out) {
    sums_real_body(x, count, step, shift, total, out);
}

AVX2 static double hsum(__m256d v) {
    __m128d lo = _mm256_castpd256_pd128(v), hi = _mm256_extractf128_pd(v, 1);
    lo = _mm_add_pd(lo, hi);
    return _mm_cvtsd_f64(_mm_add_sd(lo, _mm_unpackhi_pd(lo, lo)));
}

/* Complex phi with AVX2 + FMA: two complex values per register, two registers per step (eight
 * independent accumulators hide the FMA latency); the imaginary part comes from q with re and im
 * swapped: lanes (pr*qi, pi*qr) are summed with signs (+, -). */
AVX2 static void sums_complex_avx2(const double *x, Py_ssize_t count, Py_ssize_t step,
                                   Py_ssize_t shift, Py_ssize_t total, sums_t *out) {
    const double *now = x + 2 * shift;
    const Py_ssize_t s = 2 * step, n = 2 * count;
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, b0 = a0, b1 = a0, r0 = a0, r1 = a0, i0 = a0,
            i1 = a0;
    Py_ssize_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256d p0 = _mm256_sub_pd(_mm256_loadu_pd(x + j + s), _mm256_loadu_pd(x + j));
        __m256d p1 = _mm256_sub_pd(_mm256_loadu_pd(x + j + s + 4), _mm256_loadu_pd(x + j + 4));
        __m256d q0 = _mm256_sub_pd(_mm256_loadu_pd(now + j + s), _mm256_loadu_pd(now + j));
        __m256d q1 =
            _mm256_sub_pd(_mm256_loadu_pd(now + j + s + 4), _mm256_loadu_pd(now + j + 4));
        a0 = _mm256_fmadd_pd(q0, q0, a0);
        a1 = _mm256_fmadd_pd(q1, q1, a1);
        b0 = _mm256_fmadd_pd(p0, p0, b0);
        b1 = _mm256_fmadd_pd(p1, p1, b1);
        r0 = _mm256_fmadd_pd(p0, q0, r0);
        r1 = _mm256_fmadd_pd(p1, q1, r1);
        i0 = _mm256_fmadd_pd(p0, _mm256_permute_pd(q0, 0x5), i0);
        i1 = _mm256_fmadd_pd(p1, _mm256_permute_pd(q1, 0x5), i1);
    }
    __m256d signs = _mm256_setr_pd(1.0, -1.0, 1.0, -1.0);
    double a = hsum(_mm256_add_pd(a0, a1)), b = hsum(_mm256_add_pd(b0, b1));
    double re = hsum(_mm256_add_pd(r0, r1));
    double im = hsum(_mm256_mul_pd(_mm256_add_pd(i0, i1), signs));
    for (; j < n; j += 2) {
        double pr = x[j + s] - x[j], pi = x[j + s + 1] - x[j + 1];
        double qr = now[j + s] - now[j], qi = now[j + s + 1] - now[j + 1];
        a += qr * qr + qi * qi;
        b += pr * pr + pi * pi;
        re += pr * qr + pi * qi;
        im += pr * qi - pi * qr;
    }
    out->energy = b + tail_energy(x, n, 2 * total, s);
    out->a = a;
    out->b = b;
    out->re = re;
    out->im = im;
}
#endif

typedef void (*kernel_t)(const double *, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                         sums_t *);

/* Chosen once at import: the AVX2 + FMA loops when the CPU has them, else the portable ones. */
static kernel_t real_kernel = sums_real, complex_kernel = sums_complex;
static const char *isa = "baseline";

static PyObject *fail(const char *message) {
    PyErr_SetString(PyExc_ValueError, message);
    return NULL;
}

/* The sums as (energy, a, b, total), total a Python complex. */
static PyObject *result(const sums_t *out) {
    PyObject *total = PyComplex_FromDoubles(out->re, out->im);
    if (total == NULL) {
        return NULL;
    }
    return Py_BuildValue("(dddN)", out->energy, out->a, out->b, total);
}

/* Check the buffer (C-contiguous, native float64 "d" or complex128 "Zd", 1-D or 2-D) and the
 * lag, run the real or complex kernel on it, return the sums. */
static PyObject *run(PyObject *const *args, Py_ssize_t nargs, kernel_t real, kernel_t cplx) {
    if (nargs != 2) {
        return fail("lagged_sums takes 2 arguments: phi and lag");
    }
    Py_ssize_t lag = PyLong_AsSsize_t(args[1]);
    if (lag == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        return NULL;
    }
    const char *format = view.format == NULL ? "B" : view.format;
    int is_complex = strcmp(format, "Zd") == 0;
    Py_ssize_t rows = view.ndim >= 1 ? view.shape[0] : 0;
    Py_ssize_t cols = view.ndim == 2 ? view.shape[1] : 1;
    if (!(is_complex || strcmp(format, "d") == 0) || view.ndim < 1 || view.ndim > 2) {
        PyBuffer_Release(&view);
        return fail("phi must be a 1-D or 2-D buffer of native float64 or complex128");
    }
    if (rows < 2 || cols < 1 || lag < 0 || lag >= rows - 1) {
        PyBuffer_Release(&view);
        return fail("need at least 2 rows, 1 column and 0 <= lag < rows - 1");
    }
    const double *x = (const double *)view.buf;
    Py_ssize_t m = rows - 1;
    sums_t out;
    Py_BEGIN_ALLOW_THREADS;
    (is_complex ? cplx : real)(x, (m - lag) * cols, cols, lag * cols, m * cols, &out);
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&view);
    return result(&out);
}

PyDoc_STRVAR(lagged_sums_doc,
             "lagged_sums(phi, lag, /)\n--\n\n"
             "(energy, a, b, total) of a C-contiguous native float64 or complex128 buffer of\n"
             "shape (rows,) or (rows, cols) at a lag of `lag` rows (0 <= lag < rows - 1),\n"
             "computed with the instruction set named by ISA.");

static PyObject *lagged_sums(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    return run(args, nargs, real_kernel, complex_kernel);
}

PyDoc_STRVAR(lagged_sums_portable_doc,
             "lagged_sums_portable(phi, lag, /)\n--\n\n"
             "lagged_sums with the portable loops whatever the CPU (what a CPU without\n"
             "AVX2 + FMA, or an aarch64 one, runs; for tests).");

static PyObject *lagged_sums_portable(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    return run(args, nargs, sums_real, sums_complex);
}

static PyMethodDef methods[] = {
    {"lagged_sums", (PyCFunction)(void (*)(void))lagged_sums, METH_FASTCALL, lagged_sums_doc},
    {"lagged_sums_portable", (PyCFunction)(void (*)(void))lagged_sums_portable, METH_FASTCALL,
     lagged_sums_portable_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_fused",
    .m_doc = "KAIROS sums at omega = 0 in one fused pass.",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__fused(void) {
#ifdef FUSED_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        real_kernel = sums_real_avx2;
        complex_kernel = sums_complex_avx2;
        isa = "avx2+fma";
    }
#endif
    PyObject *mod = PyModule_Create(&module);
    if (mod != NULL && PyModule_AddStringConstant(mod, "ISA", isa) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
