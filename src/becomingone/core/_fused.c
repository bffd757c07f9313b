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
 *
 * Threads (docs/kairos.md "Threads"): the GIL is released around the sums, and an input of at
 * least SPLIT_MIN doubles is cut into up to 4 x THREADS parts (THREADS = the CPUs this process
 * may run on, at most MAX_THREADS), summed at once by the calling thread and a small pool of
 * POSIX threads started on first use; the parts are added in order. Any value index is a valid
 * cut: a part reads the values after its last one (the difference and the lag reach across the
 * cut) but sums only its own pairs, and the last part adds the tail energy. The caller claims
 * parts too, so a worker that is slow to wake (a busy core) costs at most its wake-up: the
 * caller then sums its parts itself. One split call at a time: another thread that calls
 * meanwhile sums alone. After fork() the child starts its own pool. No OpenMP runtime: plain
 * pthreads (the build needs nothing more, and libgomp's pool hangs a forked child); without
 * pthreads (not POSIX) every call sums in one thread.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <sched.h> /* sched_yield; on Linux sched_getaffinity (_GNU_SOURCE comes from Python.h) */
#include <signal.h>
#include <time.h>
#include <unistd.h>
#define FUSED_THREADS 1
#endif

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

/* ---- splitting one call across threads ---------------------------------------------------- */

/* Most threads and parts of one call, and the parts' size unit (values; a multiple of every
 * SIMD block). */
#define MAX_THREADS 16
#define MAX_PARTS (4 * MAX_THREADS)
#define PART_ALIGN 8
/* An input of at least SPLIT_MIN doubles (real values, or twice the complex ones) is split in
 * up to 4 x THREADS parts of at least PART_MIN doubles, claimed one at a time: with more parts
 * than threads a worker that starts late still takes its share of what is left. SPLIT_MIN is
 * a call of ~20-40 us on one thread here, a few times a worker's hand-off; the exact crossover
 * could not be measured on the loaded machine (docs/kairos.md "Threads"). */
#define SPLIT_MIN 65536
#define PART_MIN 16384

/* THREADS: the threads of a large call (set at import). */
static int threads = 1;

typedef struct {
    kernel_t kernel;
    const double *x;
    Py_ssize_t width; /* doubles per value: 1 (real) or 2 (complex) */
    Py_ssize_t count, step, shift, total, chunk;
    int parts, next, finished;
    sums_t out[MAX_PARTS];
} job_t;

/* Part k: the pairs [k*chunk, min((k+1)*chunk, count)) from a base moved to its first value
 * (the "now" values stay `shift` after it); the last part also takes the tail energy. */
static void run_part(job_t *job, int k) {
    Py_ssize_t lo = (Py_ssize_t)k * job->chunk;
    int last = k == job->parts - 1;
    Py_ssize_t hi = last ? job->count : lo + job->chunk;
    Py_ssize_t end = last ? job->total : hi;
    job->kernel(job->x + job->width * lo, hi - lo, job->step, job->shift, end - lo,
                &job->out[k]);
}

/* The parts' sums added in part order (the same order whichever thread summed which part). */
static void add_parts(const job_t *job, sums_t *out) {
    *out = job->out[0];
    for (int k = 1; k < job->parts; k++) {
        out->energy += job->out[k].energy;
        out->a += job->out[k].a;
        out->b += job->out[k].b;
        out->re += job->out[k].re;
        out->im += job->out[k].im;
    }
}

#ifdef FUSED_THREADS
/* How long an idle worker polls for the next job before it sleeps on `wake` (a first version
 * that slept between calls was slower than one thread: docs/kairos.md "Threads"). */
#define SPIN_NS 50000

static pthread_mutex_t busy = PTHREAD_MUTEX_INITIALIZER; /* one split call at a time */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;   /* guards `sleepers` and `wake` */
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static int workers;              /* pool threads started in this process (under `busy`) */
static int sleepers;             /* workers waiting on `wake` */
static unsigned long generation; /* bumped (atomically) for each job */
static job_t *current;           /* the job in progress, or NULL (atomic) */
static int inside;               /* workers that may be reading `current` (atomic) */

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Sum unclaimed parts until none is left (the caller and the workers alike). */
static void claim_parts(job_t *job) {
    int k;
    while ((k = __atomic_fetch_add(&job->next, 1, __ATOMIC_ACQ_REL)) < job->parts) {
        run_part(job, k);
        __atomic_fetch_add(&job->finished, 1, __ATOMIC_RELEASE);
    }
}

/* A worker: wait for a new generation (polling SPIN_NS, then asleep), announce itself in
 * `inside` before it reads `current` (so the caller, which clears `current` and then waits for
 * `inside` to drop to 0, never returns while a worker can still touch its job), sum parts. */
static void *worker(void *arg) {
    (void)arg;
    unsigned long seen = __atomic_load_n(&generation, __ATOMIC_SEQ_CST);
    for (;;) {
        long long until = now_ns() + SPIN_NS;
        for (int i = 1; __atomic_load_n(&generation, __ATOMIC_ACQUIRE) == seen; i++) {
            relax();
            if (i % 64 == 0 && now_ns() > until) {
                pthread_mutex_lock(&mu);
                sleepers++;
                while (__atomic_load_n(&generation, __ATOMIC_SEQ_CST) == seen) {
                    pthread_cond_wait(&wake, &mu);
                }
                sleepers--;
                pthread_mutex_unlock(&mu);
                break;
            }
        }
        seen = __atomic_load_n(&generation, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&inside, 1, __ATOMIC_SEQ_CST);
        job_t *job = __atomic_load_n(&current, __ATOMIC_SEQ_CST);
        if (job != NULL) {
            claim_parts(job);
        }
        __atomic_sub_fetch(&inside, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

/* Start pool threads until there are `want` (fewer if the system refuses: the caller then
 * sums the remaining parts itself). Called with `busy` held. Workers block every signal, so
 * signals keep going to Python's threads. */
static void grow_pool(int want) {
    if (workers >= want) {
        return;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0) {
        return;
    }
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (workers < want) {
        pthread_t thread;
        if (pthread_create(&thread, &attr, worker, NULL) != 0) {
            break;
        }
        workers++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
}

/* fork(): wait for a split call in progress to end; the child has no workers (they stay in
 * the parent) and starts its own pool on its first split call. */
static void before_fork(void) {
    pthread_mutex_lock(&busy);
    pthread_mutex_lock(&mu);
}

static void after_fork_parent(void) {
    pthread_mutex_unlock(&mu);
    pthread_mutex_unlock(&busy);
}

static void after_fork_child(void) {
    workers = 0;
    sleepers = 0;
    inside = 0;
    current = NULL;
    pthread_cond_init(&wake, NULL);
    pthread_mutex_unlock(&mu);
    pthread_mutex_unlock(&busy);
}

/* Run the job's parts on the caller and the pool; alone when another split call holds it.
 * The caller waits for the last part by polling (it takes one part's time, ~10 us), giving
 * its core away between polls once that is exceeded. */
static void run_job(job_t *job) {
    if (pthread_mutex_trylock(&busy) != 0) {
        for (int k = 0; k < job->parts; k++) {
            run_part(job, k);
        }
        return;
    }
    grow_pool(job->parts - 1 < threads - 1 ? job->parts - 1 : threads - 1);
    __atomic_store_n(&current, job, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&generation, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&mu);
    if (sleepers > 0) {
        pthread_cond_broadcast(&wake);
    }
    pthread_mutex_unlock(&mu);
    claim_parts(job);
    for (int i = 1; __atomic_load_n(&job->finished, __ATOMIC_ACQUIRE) < job->parts; i++) {
        relax();
        if (i % 1024 == 0) {
            sched_yield();
        }
    }
    __atomic_store_n(&current, NULL, __ATOMIC_SEQ_CST);
    for (int i = 1; __atomic_load_n(&inside, __ATOMIC_SEQ_CST) > 0; i++) {
        relax(); /* a worker between its `inside` increment and its read of `current` */
        if (i % 1024 == 0) {
            sched_yield();
        }
    }
    pthread_mutex_unlock(&busy);
}

/* The CPUs this process may run on (its affinity mask on Linux), 1 .. MAX_THREADS. */
static int cpu_threads(void) {
    long n = 0;
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        n = CPU_COUNT(&set);
    }
#endif
    if (n < 1) {
        n = sysconf(_SC_NPROCESSORS_ONLN);
    }
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

#else
static int cpu_threads(void) { return 1; }

static void run_job(job_t *job) {
    for (int k = 0; k < job->parts; k++) {
        run_part(job, k);
    }
}
#endif

/* The parts of an automatic call over `doubles` doubles (SPLIT_MIN above). */
static int auto_parts(Py_ssize_t doubles) {
    if (threads < 2 || doubles < SPLIT_MIN) {
        return 1;
    }
    Py_ssize_t parts = doubles / PART_MIN;
    return parts > 4 * threads ? 4 * threads : (int)parts;
}

/* The sums of `count` pairs in `parts_wanted` parts (0: auto_parts), run by up to THREADS
 * threads; no part is empty. Called without the GIL. */
static void split_sums(kernel_t kernel, const double *x, Py_ssize_t width, Py_ssize_t count,
                       Py_ssize_t step, Py_ssize_t shift, Py_ssize_t total, int parts_wanted,
                       sums_t *out) {
    int parts = parts_wanted > 0 ? parts_wanted : auto_parts(width * total);
    if (parts > MAX_PARTS) {
        parts = MAX_PARTS;
    }
    if ((Py_ssize_t)parts > count) {
        parts = count < 1 ? 1 : (int)count;
    }
    if (parts == 1) {
        kernel(x, count, step, shift, total, out);
        return;
    }
    job_t job = {.kernel = kernel, .x = x, .width = width, .count = count, .step = step,
                 .shift = shift, .total = total};
    Py_ssize_t chunk = (count + parts - 1) / parts;
    if (chunk >= 4 * PART_ALIGN) {
        chunk = (chunk + PART_ALIGN - 1) / PART_ALIGN * PART_ALIGN;
    }
    job.chunk = chunk;
    job.parts = (int)((count + chunk - 1) / chunk);
    run_job(&job);
    add_parts(&job, out);
}

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

/* Check the buffer (C-contiguous, native float64 "d" or complex128 "Zd", 1-D or 2-D), the
 * lag and the optional part count, run the real or complex kernel on it without the GIL,
 * return the sums. */
static PyObject *run(PyObject *const *args, Py_ssize_t nargs, kernel_t real, kernel_t cplx) {
    if (nargs != 2 && nargs != 3) {
        return fail("lagged_sums takes 2 or 3 arguments: phi, lag and parts");
    }
    Py_ssize_t lag = PyLong_AsSsize_t(args[1]);
    if (lag == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t parts = 0;
    if (nargs == 3) {
        parts = PyLong_AsSsize_t(args[2]);
        if (parts == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (parts < 0 || parts > MAX_THREADS) {
            return fail("parts must be 0 (automatic) to 16");
        }
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
    split_sums(is_complex ? cplx : real, x, is_complex ? 2 : 1, (m - lag) * cols, cols,
               lag * cols, m * cols, (int)parts, &out);
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&view);
    return result(&out);
}

PyDoc_STRVAR(lagged_sums_doc,
             "lagged_sums(phi, lag, parts=0, /)\n--\n\n"
             "(energy, a, b, total) of a C-contiguous native float64 or complex128 buffer of\n"
             "shape (rows,) or (rows, cols) at a lag of `lag` rows (0 <= lag < rows - 1),\n"
             "computed with the instruction set named by ISA, without the GIL. parts=0 splits\n"
             "an input of at least SPLIT_MIN doubles in parts summed by up to THREADS threads;\n"
             "parts=k (1 to 16) uses k parts whatever the size (k=1: the calling thread only).");

static PyObject *lagged_sums(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    return run(args, nargs, real_kernel, complex_kernel);
}

PyDoc_STRVAR(lagged_sums_portable_doc,
             "lagged_sums_portable(phi, lag, parts=0, /)\n--\n\n"
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
    threads = cpu_threads();
#ifdef FUSED_THREADS
    static int registered;
    if (!registered && pthread_atfork(before_fork, after_fork_parent, after_fork_child) == 0) {
        registered = 1;
    }
    if (!registered) {
        threads = 1; /* without the fork handlers a forked child could wait on a lost pool */
    }
#endif
    PyObject *mod = PyModule_Create(&module);
    if (mod != NULL && (PyModule_AddStringConstant(mod, "ISA", isa) < 0 ||
                        PyModule_AddIntConstant(mod, "THREADS", threads) < 0 ||
                        PyModule_AddIntConstant(mod, "SPLIT_MIN", SPLIT_MIN) < 0 ||
                        PyModule_AddIntConstant(mod, "MAX_THREADS", MAX_THREADS) < 0)) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
