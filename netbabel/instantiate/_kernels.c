/* Compiled loops of netbabel.instantiate (see kernels.py for what each does and why).
 *
 * Plain C on Python buffers (no numpy C API); normal values come from numpy's own
 * random_standard_normal (libnpyrandom, shipped with numpy for extensions), driven by the
 * bit generator of a numpy Generator through its capsule, so the numbers and the state of the
 * stream are exactly numpy's. Every loop runs without the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "numpy/random/bitgen.h"
#include "numpy/random/distributions.h"

#define LOW_BITS 6 /* bits of a node id the first pass of place_runs spreads by */
#define RUN_FLAG ((uint64_t)1 << 63)

/* -- buffers -------------------------------------------------------------------------------- */

static int get_buffer(PyObject *obj, Py_buffer *view, int writable, const char *name) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        return -1;
    }
    if (view->ndim < 1) {
        PyErr_Format(PyExc_ValueError, "%s: an array is needed", name);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static Py_ssize_t count(const Py_buffer *view) { return view->len / view->itemsize; }

/* format check: 'H' / 'I' / 'L' / 'Q' ... by size and signedness */
static int is_unsigned(const Py_buffer *view, Py_ssize_t size) {
    const char *f = view->format;
    if (*f == '<' || *f == '=' || *f == '@') {
        f++;
    }
    if (view->itemsize != size) {
        return 0;
    }
    return (*f == 'B' || *f == 'H' || *f == 'I' || *f == 'L' || *f == 'K' || *f == 'Q' || *f == 'N');
}

static int is_type(const Py_buffer *view, char code, Py_ssize_t size) {
    const char *f = view->format;
    if (*f == '<' || *f == '=' || *f == '@') {
        f++;
    }
    if (view->itemsize != size) {
        return 0;
    }
    if (code == 'i') { /* signed 64-bit */
        return *f == 'l' || *f == 'q';
    }
    return *f == code;
}

/* -- the source index ------------------------------------------------------------------------ */

/* runs per node added to counts; -1 when a key is not below n_nodes */
#define DEFINE_COUNT_RUNS(KT, NAME)                                                          \
    static int64_t NAME(const KT *keys, Py_ssize_t n, int64_t *counts, int64_t n_nodes) {  \
        int64_t runs = 0, previous = -1;                                                   \
        for (Py_ssize_t e = 0; e < n; e++) {                                               \
            int64_t k = (int64_t)keys[e];                                                  \
            if (k != previous) {                                                           \
                if (k >= n_nodes) return -1;                                               \
                counts[k]++;                                                               \
                runs++;                                                                    \
                previous = k;                                                              \
            }                                                                              \
        }                                                                                  \
        return runs;                                                                       \
    }

DEFINE_COUNT_RUNS(uint16_t, count_runs_u16)
DEFINE_COUNT_RUNS(uint32_t, count_runs_u32)

static PyObject *py_count_runs(PyObject *self, PyObject *args) {
    PyObject *keys_obj, *counts_obj;
    if (!PyArg_ParseTuple(args, "OO", &keys_obj, &counts_obj)) {
        return NULL;
    }
    Py_buffer keys, counts;
    if (get_buffer(keys_obj, &keys, 0, "keys") < 0) {
        return NULL;
    }
    if (get_buffer(counts_obj, &counts, 1, "counts") < 0) {
        PyBuffer_Release(&keys);
        return NULL;
    }
    int64_t runs = -1;
    if (!is_type(&counts, 'i', 8)) {
        PyErr_SetString(PyExc_TypeError, "counts must be int64");
    } else if (is_unsigned(&keys, 2) || is_unsigned(&keys, 4)) {
        Py_ssize_t n = count(&keys), n_nodes = count(&counts);
        Py_BEGIN_ALLOW_THREADS
        if (keys.itemsize == 2) runs = count_runs_u16(keys.buf, n, counts.buf, n_nodes);
        else runs = count_runs_u32(keys.buf, n, counts.buf, n_nodes);
        Py_END_ALLOW_THREADS
        if (runs < 0) {
            PyErr_SetString(PyExc_ValueError, "a key is not below len(counts)");
        }
    } else {
        PyErr_SetString(PyExc_TypeError, "keys must be uint16 or uint32");
    }
    PyBuffer_Release(&keys);
    PyBuffer_Release(&counts);
    if (runs < 0) {
        return NULL;
    }
    return PyLong_FromLongLong(runs);
}

#define DEFINE_PLACE_RUNS(KT, RT, NAME)                                                     \
    static int NAME(const KT *keys, int64_t first, int64_t stop, int64_t *free_,          \
                    int64_t n_free, RT *ranges, uint64_t *scratch) {                      \
        const int64_t mask = (1 << LOW_BITS) - 1, n_high = n_free >> LOW_BITS;            \
        int64_t low_free[1 << LOW_BITS];                                                   \
        KT largest = 0;                                                                    \
        memset(low_free, 0, sizeof(low_free));                                             \
        for (int64_t e = first; e < stop; e++) {                                           \
            low_free[keys[e] & mask]++;                                                    \
            if (keys[e] > largest) largest = keys[e];                                      \
        }                                                                                  \
        if (stop > first && ((int64_t)largest >> LOW_BITS) >= n_high) return -1;          \
        int64_t total = 0;                                                                 \
        for (int64_t d = 0; d <= mask; d++) {                                              \
            int64_t c = low_free[d];                                                       \
            low_free[d] = total;                                                           \
            total += c;                                                                    \
        }                                                                                  \
        int64_t previous = first > 0 ? (int64_t)keys[first - 1] : -1;                     \
        for (int64_t e = first; e < stop; e++) {                                           \
            int64_t k = (int64_t)keys[e];                                                  \
            uint64_t item = ((uint64_t)k << 32) | (uint64_t)e;                             \
            if (k == previous) item |= RUN_FLAG;                                           \
            scratch[low_free[k & mask]++] = item;                                          \
            previous = k;                                                                  \
        }                                                                                  \
        for (int64_t r = 0; r < stop - first; r++) {                                       \
            uint64_t item = scratch[r];                                                    \
            int64_t e = (int64_t)(item & 0xFFFFFFFFu);                                     \
            int64_t node = (int64_t)((item & ~RUN_FLAG) >> 32);                            \
            int64_t i = (node & mask) * n_high + (node >> LOW_BITS);                       \
            if (item & RUN_FLAG) {                                                         \
                ranges[2 * (free_[i] - 1) + 1] = (RT)(e + 1);                              \
            } else {                                                                       \
                int64_t slot = free_[i]++;                                                 \
                ranges[2 * slot] = (RT)e;                                                  \
                ranges[2 * slot + 1] = (RT)(e + 1);                                        \
            }                                                                              \
        }                                                                                  \
        return 0;                                                                          \
    }

DEFINE_PLACE_RUNS(uint16_t, uint32_t, place_runs_u16_u32)
DEFINE_PLACE_RUNS(uint16_t, uint64_t, place_runs_u16_u64)
DEFINE_PLACE_RUNS(uint32_t, uint32_t, place_runs_u32_u32)
DEFINE_PLACE_RUNS(uint32_t, uint64_t, place_runs_u32_u64)

static PyObject *py_place_runs(PyObject *self, PyObject *args) {
    PyObject *keys_obj, *free_obj, *ranges_obj, *scratch_obj;
    Py_ssize_t first, stop;
    if (!PyArg_ParseTuple(args, "OnnOOO", &keys_obj, &first, &stop, &free_obj, &ranges_obj, &scratch_obj)) {
        return NULL;
    }
    Py_buffer keys, free_, ranges, scratch;
    int have = 0;
    PyObject *result = NULL;
    if (get_buffer(keys_obj, &keys, 0, "keys") < 0) goto done;
    have = 1;
    if (get_buffer(free_obj, &free_, 1, "free") < 0) goto done;
    have = 2;
    if (get_buffer(ranges_obj, &ranges, 1, "ranges") < 0) goto done;
    have = 3;
    if (get_buffer(scratch_obj, &scratch, 1, "scratch") < 0) goto done;
    have = 4;
    int key16 = is_unsigned(&keys, 2), key32 = is_unsigned(&keys, 4);
    int r32 = is_unsigned(&ranges, 4), r64 = is_unsigned(&ranges, 8);
    if (!(key16 || key32) || !(r32 || r64) || !is_unsigned(&scratch, 8) || !is_type(&free_, 'i', 8)) {
        PyErr_SetString(PyExc_TypeError, "place_runs: keys uint16/uint32, free int64, ranges uint32/uint64, "
                                         "scratch uint64");
        goto done;
    }
    if (first < 0 || stop < first || stop > count(&keys) || stop - first > count(&scratch) ||
        stop >= ((Py_ssize_t)1 << 32) || (count(&free_) >> LOW_BITS) << LOW_BITS != count(&free_)) {
        PyErr_SetString(PyExc_ValueError, "place_runs: edges out of range, scratch too small or free not "
                                          "digit-major");
        goto done;
    }
    int64_t n_free = count(&free_);
    int status;
    Py_BEGIN_ALLOW_THREADS
    if (key16 && r32) status = place_runs_u16_u32(keys.buf, first, stop, free_.buf, n_free, ranges.buf, scratch.buf);
    else if (key16) status = place_runs_u16_u64(keys.buf, first, stop, free_.buf, n_free, ranges.buf, scratch.buf);
    else if (r32) status = place_runs_u32_u32(keys.buf, first, stop, free_.buf, n_free, ranges.buf, scratch.buf);
    else status = place_runs_u32_u64(keys.buf, first, stop, free_.buf, n_free, ranges.buf, scratch.buf);
    Py_END_ALLOW_THREADS
    if (status < 0) {
        PyErr_SetString(PyExc_ValueError, "place_runs: a key beyond the nodes of free");
        goto done;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    if (have >= 4) PyBuffer_Release(&scratch);
    if (have >= 3) PyBuffer_Release(&ranges);
    if (have >= 2) PyBuffer_Release(&free_);
    if (have >= 1) PyBuffer_Release(&keys);
    return result;
}

/* -- values ---------------------------------------------------------------------------------- */

/* The bit generator behind a numpy Generator's capsule and a writable output buffer (NULL: error set). */
static bitgen_t *bitgen_and_out(PyObject *capsule, PyObject *out_obj, Py_buffer *out) {
    bitgen_t *bitgen = PyCapsule_GetPointer(capsule, "BitGenerator");
    if (bitgen == NULL || get_buffer(out_obj, out, 1, "out") < 0) {
        return NULL;
    }
    return bitgen;
}

static PyObject *py_normal_fill(PyObject *self, PyObject *args) {
    PyObject *capsule, *out_obj;
    double mean, sd, low, high;
    if (!PyArg_ParseTuple(args, "OddddO", &capsule, &mean, &sd, &low, &high, &out_obj)) {
        return NULL;
    }
    Py_buffer out;
    bitgen_t *bitgen = bitgen_and_out(capsule, out_obj, &out);
    if (bitgen == NULL) {
        return NULL;
    }
    if (!is_type(&out, 'd', 8)) {
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_TypeError, "out must be float64");
        return NULL;
    }
    Py_ssize_t n = count(&out), outside = 0;
    double *x = out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        double v = mean + sd * random_standard_normal(bitgen);
        x[i] = v;
        outside += (v < low) | (v > high);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out);
    return PyLong_FromSsize_t(outside);
}

/* Uniform integers in [0, high) as numpy's Generator.integers(0, high, n, dtype=uint32) draws them:
 * Lemire's multiply-shift with rejection, on 32-bit halves of the bit generator's 64-bit words, low
 * half first (numpy's next_uint32). (has_uint32, uinteger): numpy's buffer of a high half, before;
 * returns it after, for the caller to put back into numpy's state. */
static PyObject *py_bounded_uint32(PyObject *self, PyObject *args) {
    PyObject *capsule, *out_obj;
    unsigned long long high_arg, uinteger;
    int has_uint32;
    if (!PyArg_ParseTuple(args, "OKOpK", &capsule, &high_arg, &out_obj, &has_uint32, &uinteger)) {
        return NULL;
    }
    if (high_arg < 2 || high_arg > 0xFFFFFFFFull) {
        PyErr_SetString(PyExc_ValueError, "bounded_uint32: high must be in [2, 2^32 - 1]");
        return NULL;
    }
    Py_buffer out;
    bitgen_t *bitgen = bitgen_and_out(capsule, out_obj, &out);
    if (bitgen == NULL) {
        return NULL;
    }
    if (!is_unsigned(&out, 4)) {
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_TypeError, "out must be uint32");
        return NULL;
    }
    const uint32_t high = (uint32_t)high_arg, threshold = (uint32_t)(0u - high) % high;
    Py_ssize_t n = count(&out);
    uint32_t *x = out.buf;
    int have_high = has_uint32;
    uint32_t high_half = (uint32_t)uinteger;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t m;
        uint32_t leftover;
        do {
            uint32_t u;
            if (have_high) {
                u = high_half;
                have_high = 0;
            } else {
                uint64_t word = bitgen->next_uint64(bitgen->state);
                u = (uint32_t)word;
                high_half = (uint32_t)(word >> 32);
                have_high = 1;
            }
            m = (uint64_t)u * high;
            leftover = (uint32_t)m;
        } while (leftover < threshold);
        x[i] = (uint32_t)(m >> 32);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out);
    return Py_BuildValue("iK", have_high, (unsigned long long)high_half);
}

#define DEFINE_DELAYS(TT, NAME)                                                                 \
    static Py_ssize_t NAME(const uint16_t *slots, Py_ssize_t n, const TT *table, int64_t n_main, \
                           double factor, int divide, double *out) {                             \
        Py_ssize_t rest = 0;                                                                     \
        for (Py_ssize_t i = 0; i < n; i++) {                                                     \
            uint16_t s = slots[i];                                                               \
            rest += s >= n_main;                                                                 \
            double steps = (double)table[s];                                                     \
            out[i] = divide ? steps / factor : steps * factor;                                   \
        }                                                                                        \
        return rest;                                                                             \
    }

DEFINE_DELAYS(uint16_t, delays_u16)
DEFINE_DELAYS(uint32_t, delays_u32)

static PyObject *py_delays_from_slots(PyObject *self, PyObject *args) {
    PyObject *slots_obj, *table_obj, *out_obj;
    long long n_main;
    double factor;
    int divide;
    if (!PyArg_ParseTuple(args, "OOLdpO", &slots_obj, &table_obj, &n_main, &factor, &divide, &out_obj)) {
        return NULL;
    }
    Py_buffer slots, table, out;
    if (get_buffer(slots_obj, &slots, 0, "slots") < 0) return NULL;
    if (get_buffer(table_obj, &table, 0, "table") < 0) {
        PyBuffer_Release(&slots);
        return NULL;
    }
    if (get_buffer(out_obj, &out, 1, "out") < 0) {
        PyBuffer_Release(&slots);
        PyBuffer_Release(&table);
        return NULL;
    }
    Py_ssize_t rest = -1;
    if (!is_unsigned(&slots, 2) || !(is_unsigned(&table, 2) || is_unsigned(&table, 4)) || !is_type(&out, 'd', 8)) {
        PyErr_SetString(PyExc_TypeError, "delays_from_slots: slots uint16, table uint16/uint32, out float64");
    } else if (count(&table) < 65536 || count(&out) != count(&slots)) {
        PyErr_SetString(PyExc_ValueError, "delays_from_slots: the table needs 65536 slots, out one per slot");
    } else {
        Py_ssize_t n = count(&slots);
        Py_BEGIN_ALLOW_THREADS
        if (table.itemsize == 2) rest = delays_u16(slots.buf, n, table.buf, n_main, factor, divide, out.buf);
        else rest = delays_u32(slots.buf, n, table.buf, n_main, factor, divide, out.buf);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&slots);
    PyBuffer_Release(&table);
    PyBuffer_Release(&out);
    if (rest < 0) return NULL;
    return PyLong_FromSsize_t(rest);
}

/* -- module ---------------------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"count_runs", py_count_runs, METH_VARARGS, "count_runs(keys, counts) -> runs"},
    {"place_runs", py_place_runs, METH_VARARGS, "place_runs(keys, first, stop, free, ranges, scratch)"},
    {"normal_fill", py_normal_fill, METH_VARARGS, "normal_fill(capsule, mean, sd, low, high, out) -> outside"},
    {"bounded_uint32", py_bounded_uint32, METH_VARARGS,
     "bounded_uint32(capsule, high, out, has_uint32, uinteger) -> (has_uint32, uinteger)"},
    {"delays_from_slots", py_delays_from_slots, METH_VARARGS,
     "delays_from_slots(slots, table, n_main, factor, divide, out) -> rest"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels", NULL, -1, methods};

PyMODINIT_FUNC PyInit__kernels(void) {
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "LOW_BITS", LOW_BITS) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
