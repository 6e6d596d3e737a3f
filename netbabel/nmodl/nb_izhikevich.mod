COMMENT
netbabel: Izhikevich (2003) neuron stepped exactly as NEST 3.10's izhikevich
(forward Euler on the dt grid, V_m and U_m in mV, a spike of weight w makes
V_m jump by w, I_e and injected currents in pA as NEST adds them directly).

Driving and timing as in nb_iaf_psc_alpha.mod: a self-event at T_k + 0.49 dt
performs NEST's whole step k-1. weight[0]: PSP amplitude (mV), weight[1]:
change of the injected current (pA). A spike of NEST time T_k is emitted at
T_k + 0.49 dt; connections from this cell use the delay d - 0.49 dt. V_m is
NEST's V_m at the last grid time handled. Fixed step only, delays multiples of dt.
ENDCOMMENT

NEURON {
    THREADSAFE
    ARTIFICIAL_CELL nb_izhikevich
    RANGE V_m, U_m, a, b, c, d, V_th, V_min, I_e, consistent_integration
    RANGE Icur
}

PARAMETER {
    V_m = -65 (mV)
    U_m = -13 (mV)
    a = 0.02
    b = 0.2
    c = -65 (mV)
    d = 8 (mV)
    V_th = 30 (mV)
    V_min = -1e308 (mV)
    I_e = 0 (pA)
    consistent_integration = 1
}

ASSIGNED {
    vm (mV)
    um (mV)
    Icur (pA)
    buf_spikes (mV)
    buf_cur (pA)
    nstep
}

INITIAL {
    vm = V_m
    um = U_m
    Icur = 0
    buf_spikes = 0
    buf_cur = 0
    nstep = 1
    net_send(1.49 * dt, 1)
}

NET_RECEIVE(weight, dcur) {
    LOCAL h, vold, uold, I_syn
    INITIAL {
        : keeps dcur as set by the user (NEURON zeroes the weights after the first without this block)
    }
    if (flag == 1) {
        : NEST's step from T_k-1 to T_k, handled at T_k + 0.49 dt
        h = dt
        if (consistent_integration != 0) {
            vold = vm
            uold = um
VERBATIM
            vm += _lh * (0.04 * _lvold * _lvold + 5.0 * _lvold + 140.0 - _luold + Icur + I_e) + buf_spikes;
            um += _lh * a * (b * _lvold - _luold);
ENDVERBATIM
        } else {
            I_syn = buf_spikes
VERBATIM
            vm += _lh * 0.5 * (0.04 * vm * vm + 5.0 * vm + 140.0 - um + Icur + I_e + _lI_syn);
            vm += _lh * 0.5 * (0.04 * vm * vm + 5.0 * vm + 140.0 - um + Icur + I_e + _lI_syn);
            um += _lh * a * (b * vm - um);
ENDVERBATIM
        }
        buf_spikes = 0
        if (vm < V_min) {
            vm = V_min
        }
        if (vm >= V_th) {
            vm = c
            um = um + d
            net_event(t)
        }
        Icur = Icur + buf_cur
        buf_cur = 0
        V_m = vm
        U_m = um
        nstep = nstep + 1
        net_send((nstep + 0.49) * dt - t, 1)
    } else {
        buf_spikes = buf_spikes + weight
        buf_cur = buf_cur + dcur
    }
}
