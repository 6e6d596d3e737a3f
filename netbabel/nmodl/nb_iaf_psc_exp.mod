COMMENT
netbabel: leaky integrate-and-fire neuron with exponential synaptic currents,
integrated exactly on the dt grid in the same order as NEST 3.10's iaf_psc_exp
(V relative to E_L; per step: V propagated with the synaptic currents of the
previous step, currents decay, the input that arrived at the end of the step is
added, threshold checked at the grid point, the injected current of the next step set).

NEST's step k (from T_k to T_k+1) is performed once all its input is known, at
T_k+1 + 0.49 dt. Input events (flag 0) only accumulate into the buffer of the
step they arrive in: weight[0] is a synaptic weight (pA, the sign selects the
receptor), weight[1] a change of the injected current (pA) applied from the
next step on. A spike of NEST time T_k+1 is emitted at T_k+1 + 0.49 dt:
connections from this cell use the delay d - 0.49 dt so that it arrives at
T_k+1 + d, and recorded times are rounded down to the grid.

lazy = 1 (default): steps are performed when an input arrives or when a spike
is due; after every update the cell looks ahead (same arithmetic, no input) for
the next threshold crossing and schedules a self-event there, stopping early
when an upper bound of V (no input) stays below threshold. The arithmetic and
its order are those of NEST in both modes, so the results are the same; lazy
only saves the per-step events. lazy = 0: a self-event every step (V_m then
tracks NEST's V_m at the last grid time handled: a sample at time t shows V_m(t - dt)).
Needs the fixed-step method (cvode off); delays should be multiples of dt.
ENDCOMMENT

NEURON {
    THREADSAFE
    ARTIFICIAL_CELL nb_iaf_psc_exp
    RANGE V_m, E_L, C_m, tau_m, t_ref, V_th, V_reset, I_e, tau_syn_ex, tau_syn_in, lazy
    RANGE i_syn_ex, i_syn_in, i_0, r_ref
}

PARAMETER {
    V_m = -70 (mV)
    E_L = -70 (mV)
    C_m = 250 (pF)
    tau_m = 10 (ms)
    t_ref = 2 (ms)
    V_th = -55 (mV)
    V_reset = -70 (mV)
    I_e = 0 (pA)
    tau_syn_ex = 2 (ms)
    tau_syn_in = 2 (ms)
    lazy = 1
}

ASSIGNED {
    y (mV)
    Theta (mV)
    V_reset_rel (mV)
    i_syn_ex (pA)
    i_syn_in (pA)
    i_0 (pA)
    buf_ex (pA)
    buf_in (pA)
    buf_cur (pA)
    r_ref
    ref_counts
    nstep
    gen
    P11ex P11in P22 P21ex P21in P20
}

INITIAL {
    LOCAL next
    propagators()
    Theta = V_th - E_L
    V_reset_rel = V_reset - E_L
    y = V_m - E_L
    i_syn_ex = 0
    i_syn_in = 0
    i_0 = 0
    buf_ex = 0
    buf_in = 0
    buf_cur = 0
    r_ref = 0
    nstep = 0
    gen = 1
    next = next_spike_step()
    if (next >= 0) {
        net_send((next + 1.49) * dt - t, gen)
    }
}

PROCEDURE propagators() {
    LOCAL h, tics, tics_step
    h = dt
    P11ex = exp(-h / tau_syn_ex)
    P11in = exp(-h / tau_syn_in)
    P22 = exp(-h / tau_m)
    P21ex = propagator_32(tau_syn_ex, tau_m, C_m, h)
    P21in = propagator_32(tau_syn_in, tau_m, C_m, h)
    P20 = tau_m / C_m * (1.0 - P22)
    tics = floor(t_ref * 1000.0 + 0.5)
    tics_step = floor(dt * 1000.0 + 0.5)
    ref_counts = floor((tics + tics_step - 1) / tics_step)
}

FUNCTION propagator_32(tau_syn, tau, c, h) {
    LOCAL inv_beta, gamma, P32
    : NEST's IAFPropagatorExp: regular formula, singular limit when it is not a positive normal number
    inv_beta = (tau - tau_syn) / (tau_syn * tau)
    gamma = (tau_syn * tau / (tau - tau_syn)) / c
    VERBATIM
    _lP32 = _lgamma * exp(-_lh * (1 / _ltau_syn)) * expm1(_lh * _linv_beta);
    if (!(isnormal(_lP32) && _lP32 > 0)) {
        _lP32 = _lh * (1 / _lc) * exp(-_lh * (1 / _ltau));
    }
    ENDVERBATIM
    propagator_32 = P32
}

FUNCTION do_step() {
    : NEST's step nstep with the buffered input; 1 when the neuron spikes at its end
    do_step = 0
    if (r_ref == 0) {
        y = y * P22 + i_syn_ex * P21ex + i_syn_in * P21in + (I_e + i_0) * P20
    } else {
        r_ref = r_ref - 1
    }
    i_syn_ex = i_syn_ex * P11ex
    i_syn_in = i_syn_in * P11in
    i_syn_ex = i_syn_ex + buf_ex
    i_syn_in = i_syn_in + buf_in
    buf_ex = 0
    buf_in = 0
    if (y >= Theta) {
        r_ref = ref_counts
        y = V_reset_rel
        do_step = 1
    }
    i_0 = i_0 + buf_cur
    buf_cur = 0
    V_m = y + E_L
    nstep = nstep + 1
}

FUNCTION next_spike_step() {
    : the step whose end should be handled next (a spike is due there, or the look-ahead ends); -1: none
    LOCAL ly, lex, lin, li0, lr, k, bound, margin
    if (lazy == 0) {
        next_spike_step = nstep
    } else {
        next_spike_step = -1
        ly = y
        lex = i_syn_ex
        lin = i_syn_in
        li0 = i_0
        lr = r_ref
        margin = 1e-9 * (1 + fabs(Theta))
        k = nstep
        while (k < nstep + 200) {
            if (lr == 0) {
                ly = ly * P22 + lex * P21ex + lin * P21in + (I_e + li0) * P20
            } else {
                lr = lr - 1
            }
            lex = lex * P11ex
            lin = lin * P11in
            if (k == nstep) {
                lex = lex + buf_ex
                lin = lin + buf_in
                li0 = li0 + buf_cur
            }
            if (ly >= Theta) {
                next_spike_step = k
                k = nstep + 1e9
            } else {
                : no input: V stays below max(V, (I_e + i_0 + max(i_ex, 0)) tau_m / C_m)
                bound = (I_e + li0 + (lex > 0) * lex) * tau_m / C_m
                if (ly > bound) {
                    bound = ly
                }
                if (bound < Theta - margin && lr == 0) {
                    k = nstep + 2e9
                } else {
                    k = k + 1
                }
            }
        }
        if (k == nstep + 200) {
            next_spike_step = nstep + 199
        }
    }
}

NET_RECEIVE(weight, dcur) {
    LOCAL arrival, next
    INITIAL {
        : keeps dcur as set by the user (NEURON zeroes the weights after the first without this block)
    }
    if (flag == 0) {
        : input arriving at grid time T_arrival belongs to step arrival - 1: finish the steps before it
        arrival = floor(t / dt + 0.51)
        while (nstep < arrival - 1) {
            if (do_step() == 1) {
                net_event(t)  : only if a predicted spike was missed (not expected)
            }
        }
        if (weight >= 0) {
            buf_ex = buf_ex + weight
        } else {
            buf_in = buf_in + weight
        }
        buf_cur = buf_cur + dcur
        if (lazy == 0) {
            next = -1
        } else {
            next = next_spike_step()
            gen = gen + 1
        }
    } else if (flag == gen) {
        : the self-event at T_j + 0.49 dt: perform the steps that end by T_j
        arrival = floor(t / dt + 0.01)
        while (nstep < arrival) {
            if (do_step() == 1) {
                net_event(t)
            }
        }
        next = next_spike_step()
        gen = gen + 1
    } else {
        next = -1  : a stale self-event (the look-ahead was redone since)
    }
    if (next >= 0) {
        net_send((next + 1.49) * dt - t, gen)
    }
}
