COMMENT
netbabel: leaky integrate-and-fire neuron with delta synapses (a spike of
weight w mV makes V_m jump by w), integrated exactly on the dt grid in the
order of NEST 3.10's iaf_psc_delta (V relative to E_L, lower bound V_min,
optional refractory_input).

Driving and timing as in nb_iaf_psc_alpha.mod: a self-event at T_k + 0.49 dt
performs NEST's whole step k-1. weight[0]: PSP amplitude (mV), weight[1]:
change of the injected current (pA). A spike of NEST time T_k is emitted at
T_k + 0.49 dt; connections from this cell use the delay d - 0.49 dt. V_m is
NEST's V_m at the last grid time handled. Fixed step only, delays multiples of dt.
ENDCOMMENT

NEURON {
    THREADSAFE
    ARTIFICIAL_CELL nb_iaf_psc_delta
    RANGE V_m, E_L, C_m, tau_m, t_ref, V_th, V_reset, I_e, V_min, refractory_input
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
    P30 P33
}

INITIAL {
    LOCAL tics, tics_step
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
    nstep = 1
    net_send(1.49 * dt, 1)
}

NET_RECEIVE(weight, dcur) {
    INITIAL {
        : keeps dcur as set by the user (NEURON zeroes the weights after the first without this block)
    }
    if (flag == 1) {
        : NEST's step from T_k-1 to T_k, handled at T_k + 0.49 dt
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
            net_event(t)
        }
        y0 = y0 + buf_cur
        buf_cur = 0
        V_m = y3 + E_L
        nstep = nstep + 1
        net_send((nstep + 0.49) * dt - t, 1)
    } else {
        buf_spikes = buf_spikes + weight
        buf_cur = buf_cur + dcur
    }
}
