COMMENT
netbabel: leaky integrate-and-fire neuron with delta synapses (a spike of
weight w mV makes V_m jump by w), integrated exactly on the dt grid in the
order of NEST 3.10's iaf_psc_delta (V relative to E_L, lower bound V_min,
optional refractory_input).

Driving, timing and the lazy (event-driven) mode as in nb_iaf_psc_exp.mod: NEST's
step k-1 is performed at T_k + 0.49 dt at the latest, once its input is known. weight[0]: PSP amplitude (mV), weight[1]:
change of the injected current (pA). A spike of NEST time T_k is emitted at
T_k + 0.49 dt; connections from this cell use the delay d - 0.49 dt. V_m is
NEST's V_m at the last grid time handled. Fixed step only, delays multiples of dt.
ENDCOMMENT

NEURON {
    THREADSAFE
    ARTIFICIAL_CELL nb_iaf_psc_delta
    RANGE V_m, E_L, C_m, tau_m, t_ref, V_th, V_reset, I_e, V_min, refractory_input, lazy
    RANGE y0, r_ref
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
    V_min = -1e308 (mV)
    refractory_input = 0
    lazy = 1
}

ASSIGNED {
    y3 (mV)
    V_th_rel (mV)
    V_reset_rel (mV)
    V_min_rel (mV)
    y0 (pA)
    refr_spikes_buffer (mV)
    buf_spikes (mV)
    buf_cur (pA)
    r_ref
    ref_counts
    nstep
    gen
    P30 P33
}

INITIAL {
    LOCAL tics, tics_step, next
    P33 = exp(-dt / tau_m)
    P30 = 1 / C_m * (1 - P33) * tau_m
    tics = floor(t_ref * 1000.0 + 0.5)
    tics_step = floor(dt * 1000.0 + 0.5)
    ref_counts = floor((tics + tics_step - 1) / tics_step)
    V_th_rel = V_th - E_L
    V_reset_rel = V_reset - E_L
    V_min_rel = V_min - E_L
    y3 = V_m - E_L
    y0 = 0
    refr_spikes_buffer = 0
    buf_spikes = 0
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
        y3 = P30 * (y0 + I_e) + P33 * y3 + buf_spikes
        if (refractory_input != 0 && refr_spikes_buffer != 0) {
            y3 = y3 + refr_spikes_buffer
            refr_spikes_buffer = 0
        }
        if (y3 < V_min_rel) {
            y3 = V_min_rel
        }
    } else {
        if (refractory_input != 0) {
            refr_spikes_buffer = refr_spikes_buffer + buf_spikes * exp(-r_ref * dt / tau_m)
        }
        r_ref = r_ref - 1
    }
    buf_spikes = 0
    if (y3 >= V_th_rel) {
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
    LOCAL ly, ly0, lr, lrefr, k, bound, margin
    if (lazy == 0) {
        next_spike_step = nstep
    } else {
        next_spike_step = -1
        ly = y3
        ly0 = y0
        lr = r_ref
        lrefr = refr_spikes_buffer
        margin = 1e-9 * (1 + fabs(V_th_rel))
        k = nstep
        while (k < nstep + 200) {
            if (lr == 0) {
                if (k == nstep) {
                    ly = P30 * (ly0 + I_e) + P33 * ly + buf_spikes
                } else {
                    ly = P30 * (ly0 + I_e) + P33 * ly + 0.0
                }
                if (refractory_input != 0 && lrefr != 0) {
                    ly = ly + lrefr
                    lrefr = 0
                }
                if (ly < V_min_rel) {
                    ly = V_min_rel
                }
            } else {
                if (refractory_input != 0 && k == nstep) {
                    lrefr = lrefr + buf_spikes * exp(-lr * dt / tau_m)
                }
                lr = lr - 1
            }
            if (k == nstep) {
                ly0 = ly0 + buf_cur
            }
            if (ly >= V_th_rel) {
                next_spike_step = k
                k = nstep + 1e9
            } else {
                : no input: V stays below max(V, (I_e + I) tau_m / C_m) (+ input held back while refractory)
                bound = (I_e + ly0) * tau_m / C_m
                if (ly > bound) {
                    bound = ly
                }
                if (lrefr > 0) {
                    bound = bound + lrefr
                }
                if (bound < V_th_rel - margin && lr == 0) {
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
        buf_spikes = buf_spikes + weight
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
