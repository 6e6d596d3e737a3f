COMMENT
netbabel: leaky integrate-and-fire neuron with alpha-shaped synaptic currents,
integrated exactly on the dt grid with the propagators and update order of
NEST 3.10's iaf_psc_alpha (V relative to E_L, lower bound V_min).

Driving, timing and the lazy (event-driven) mode as in nb_iaf_psc_exp.mod:
NEST's whole step k-1 (propagation from T_k-1 to T_k, the synaptic input that
arrived by T_k, threshold at T_k, the current for the next step) is performed at
T_k + 0.49 dt at the latest, once its input is known.
weight[0]: synaptic weight (pA; > 0 excitatory, else inhibitory), weight[1]:
change of the injected current (pA). A spike of NEST time T_k is emitted at
T_k + 0.49 dt; connections from this cell use the delay d - 0.49 dt. V_m is
NEST's V_m at the last grid time handled. Fixed step only, delays multiples of dt.
ENDCOMMENT

NEURON {
    THREADSAFE
    ARTIFICIAL_CELL nb_iaf_psc_alpha
    RANGE V_m, E_L, C_m, tau_m, t_ref, V_th, V_reset, I_e, tau_syn_ex, tau_syn_in, V_min, lazy
    RANGE I_ex, dI_ex, I_in, dI_in, y0, r_ref
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
    V_min = -1e308 (mV)
    lazy = 1
}

ASSIGNED {
    y3 (mV)
    Theta (mV)
    V_reset_rel (mV)
    LowerBound (mV)
    I_ex (pA)
    dI_ex
    I_in (pA)
    dI_in
    y0 (pA)
    buf_ex
    buf_in
    buf_cur (pA)
    r_ref
    ref_counts
    nstep
    gen
    P11_ex P21_ex P22_ex P31_ex P32_ex
    P11_in P21_in P22_in P31_in P32_in
    P30 P33 expm1_tau_m EPSCInitialValue IPSCInitialValue
}

INITIAL {
    LOCAL next
    propagators()
    Theta = V_th - E_L
    V_reset_rel = V_reset - E_L
    LowerBound = V_min - E_L
    y3 = V_m - E_L
    I_ex = 0
    dI_ex = 0
    I_in = 0
    dI_in = 0
    y0 = 0
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

FUNCTION do_step() {
    : NEST's step nstep with the buffered input; 1 when the neuron spikes at its end
    do_step = 0
    if (r_ref == 0) {
        y3 = P30 * (y0 + I_e) + P31_ex * dI_ex + P32_ex * I_ex + P31_in * dI_in + P32_in * I_in + expm1_tau_m * y3 + y3
        if (y3 < LowerBound) {
            y3 = LowerBound
        }
    } else {
        r_ref = r_ref - 1
    }
    I_ex = P21_ex * dI_ex + P22_ex * I_ex
    dI_ex = dI_ex * P11_ex
    dI_ex = dI_ex + EPSCInitialValue * buf_ex
    I_in = P21_in * dI_in + P22_in * I_in
    dI_in = dI_in * P11_in
    dI_in = dI_in + IPSCInitialValue * buf_in
    buf_ex = 0
    buf_in = 0
    if (y3 >= Theta) {
        r_ref = ref_counts
        y3 = V_reset_rel
        do_step = 1
    }
    y0 = y0 + buf_cur
    buf_cur = 0
    V_m = y3 + E_L
    nstep = nstep + 1
}

FUNCTION next_spike_step() {
    : the step whose end should be handled next (a spike is due there, or the look-ahead ends); -1: none
    LOCAL ly, ly0, lie, ldie, lii, ldii, lr, k, bound, margin, bex, bin
    if (lazy == 0) {
        next_spike_step = nstep
    } else {
        next_spike_step = -1
        ly = y3
        ly0 = y0
        lie = I_ex
        ldie = dI_ex
        lii = I_in
        ldii = dI_in
        lr = r_ref
        margin = 1e-9 * (1 + fabs(Theta))
        k = nstep
        while (k < nstep + 200) {
            if (k == nstep) {
                bex = buf_ex
                bin = buf_in
            } else {
                bex = 0.0
                bin = 0.0
            }
            if (lr == 0) {
                ly = P30 * (ly0 + I_e) + P31_ex * ldie + P32_ex * lie + P31_in * ldii + P32_in * lii + expm1_tau_m * ly + ly
                if (ly < LowerBound) {
                    ly = LowerBound
                }
            } else {
                lr = lr - 1
            }
            lie = P21_ex * ldie + P22_ex * lie
            ldie = ldie * P11_ex
            ldie = ldie + EPSCInitialValue * bex
            lii = P21_in * ldii + P22_in * lii
            ldii = ldii * P11_in
            ldii = ldii + IPSCInitialValue * bin
            if (k == nstep) {
                ly0 = ly0 + buf_cur
            }
            if (ly >= Theta) {
                next_spike_step = k
                k = nstep + 1e9
            } else {
                : no input: the excitatory current stays below I_ex + dI_ex tau_syn_ex / e
                bound = (I_e + ly0 + (lie > 0) * lie + (ldie > 0) * ldie * tau_syn_ex / 2.718281828459045) * tau_m / C_m
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

PROCEDURE propagators() {
    LOCAL h, tics, tics_step
    h = dt
    P11_ex = exp(-h / tau_syn_ex)
    P22_ex = P11_ex
    P11_in = exp(-h / tau_syn_in)
    P22_in = P11_in
    P33 = exp(-h / tau_m)
VERBATIM
    expm1_tau_m = expm1(-_lh / tau_m);
    P30 = -tau_m / C_m * expm1(-_lh / tau_m);
ENDVERBATIM
    P21_ex = h * P11_ex
    P21_in = h * P11_in
    P31_ex = alpha_propagator(tau_syn_ex, tau_m, C_m, h, 1)
    P32_ex = alpha_propagator(tau_syn_ex, tau_m, C_m, h, 2)
    P31_in = alpha_propagator(tau_syn_in, tau_m, C_m, h, 1)
    P32_in = alpha_propagator(tau_syn_in, tau_m, C_m, h, 2)
VERBATIM
    EPSCInitialValue = 1.0 * M_E / tau_syn_ex;
    IPSCInitialValue = 1.0 * M_E / tau_syn_in;
ENDVERBATIM
    tics = floor(t_ref * 1000.0 + 0.5)
    tics_step = floor(dt * 1000.0 + 0.5)
    ref_counts = floor((tics + tics_step - 1) / tics_step)
}

FUNCTION alpha_propagator(tau_syn, tau, c, h, which) {
    : NEST's IAFPropagatorAlpha: which = 1 gives P31, which = 2 gives P32
VERBATIM
    {
        double h_min_regular = 1e-7 * _ltau * _ltau / fabs(_ltau - _ltau_syn);
        double beta = _ltau_syn * _ltau / (_ltau - _ltau_syn);
        double gamma = beta / _lc;
        double inv_tau_syn = 1 / _ltau_syn;
        double inv_tau_m = 1 / _ltau;
        double inv_c_m = 1 / _lc;
        double inv_beta = (_ltau - _ltau_syn) / (_ltau_syn * _ltau);
        double exp_h_tau_syn = exp(-_lh * inv_tau_syn);
        double expm1_h_tau = expm1(_lh * inv_beta);
        double P32 = gamma * exp_h_tau_syn * expm1_h_tau;
        double P31;
        if (!(isnormal(P32) && P32 > 0)) {
            P32 = _lh * inv_c_m * exp(-_lh * inv_tau_m);
        }
        if (_lh > h_min_regular) {
            P31 = gamma * exp_h_tau_syn * (beta * expm1_h_tau - _lh);
        } else {
            P31 = 0.5 * _lh * _lh * inv_c_m * exp(-_lh * inv_tau_m);
        }
        _lalpha_propagator = (_lwhich == 1) ? P31 : P32;
    }
ENDVERBATIM
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
        if (weight > 0) {
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
