COMMENT
netbabel: leaky integrate-and-fire neuron with exponential synaptic currents,
integrated exactly on the dt grid in the same order as NEST 3.10's iaf_psc_exp.

Every step is driven by a self-event (flag 1) delivered 0.49 dt after the grid
time T_k: it finishes NEST's step k-1 (adds the synaptic input that arrived at
T_k, checks the threshold at T_k, sets the current input) and then performs the
propagation part of step k (V from T_k to T_k+1 with the synaptic currents of
T_k, then their decay). Input events (flag 0) only accumulate into buffers:
weight[0] is a synaptic weight (pA, sign selects the receptor), weight[1] a
change of the injected current (pA) applied from the next step on.
V_m is NEST's V_m at the last grid time handled (a recorded sample at time t
shows V_m(t - dt)). Parameters have NEST's names and units (mV, ms, pA, pF). Spike times are grid
emitted by the step's self-event, at T_k + 0.49 dt: a spike of NEST time T_k
is recorded at T_k + 0.49 dt (round down to the grid) and connections from this
cell use the delay d - 0.49 dt so that it arrives at T_k + d. Needs the fixed-step method (cvode off); delays should be multiples of dt.
ENDCOMMENT

NEURON {
    THREADSAFE
    ARTIFICIAL_CELL nb_iaf_psc_exp
    RANGE V_m, E_L, C_m, tau_m, t_ref, V_th, V_reset, I_e, tau_syn_ex, tau_syn_in
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
    P11ex P11in P22 P21ex P21in P20
}

INITIAL {
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
    net_send(0.49 * dt, 1)
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

NET_RECEIVE(weight, dcur) {
    INITIAL {
        : keeps dcur as set by the user (NEURON zeroes the weights after the first without this block)
    }
    if (flag == 1) {
        if (nstep > 0) {
            : end of NEST's nstep k-1: input arriving at T_k, threshold at T_k, new current
            i_syn_ex = i_syn_ex + buf_ex
            i_syn_in = i_syn_in + buf_in
            buf_ex = 0
            buf_in = 0
            if (y >= Theta) {
                r_ref = ref_counts
                y = V_reset_rel
                net_event(t)
            }
            i_0 = i_0 + buf_cur
            buf_cur = 0
        }
        V_m = y + E_L
        : propagation part of NEST's nstep k
        if (r_ref == 0) {
            y = y * P22 + i_syn_ex * P21ex + i_syn_in * P21in + (I_e + i_0) * P20
        } else {
            r_ref = r_ref - 1
        }
        i_syn_ex = i_syn_ex * P11ex
        i_syn_in = i_syn_in * P11in
        nstep = nstep + 1
        net_send((nstep + 0.49) * dt - t, 1)
    } else {
        if (weight >= 0) {
            buf_ex = buf_ex + weight
        } else {
            buf_in = buf_in + weight
        }
        buf_cur = buf_cur + dcur
    }
}
