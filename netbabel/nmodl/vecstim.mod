COMMENT
VecStim for netbabel: an artificial cell that fires at the times held in a
Vector given with play(vec) (times in ms, ascending; repeated times give
several spikes at the same time). The NEURON 9 wheel does not ship one.
The Vector must be kept alive by the caller while the simulation runs.
ENDCOMMENT

NEURON {
    THREADSAFE
    ARTIFICIAL_CELL VecStim
    BBCOREPOINTER ptr
}

ASSIGNED {
    index
    etime (ms)
    ptr
}

INITIAL {
    index = 0
    advance()
    while (index > 0 && etime < t) {
        advance()
    }
    if (index > 0) {
        net_send(etime - t, 1)
    }
}

NET_RECEIVE (w) {
    if (flag == 1) {
        net_event(t)
        advance()
        if (index > 0) {
            if (etime < t) {
                etime = t
            }
            net_send(etime - t, 1)
        }
    }
}

PROCEDURE advance() {
VERBATIM
    {
        IvocVect* times = *((IvocVect**) (&(_p_ptr)));
        int i = (int) index;
        if (times && i >= 0 && i < vector_capacity(times)) {
            etime = vector_vec(times)[i];
            index = i + 1;
        } else {
            index = -1;
        }
    }
ENDVERBATIM
}

PROCEDURE play() {
VERBATIM
    {
        IvocVect** times = (IvocVect**) (&(_p_ptr));
        *times = nullptr;
        if (ifarg(1)) {
            *times = vector_arg(1);
        }
    }
ENDVERBATIM
}

VERBATIM
static void bbcore_write(double* x, int* d, int* xx, int* offset, _threadargsproto_) {}
static void bbcore_read(double* x, int* d, int* xx, int* offset, _threadargsproto_) {}
ENDVERBATIM
