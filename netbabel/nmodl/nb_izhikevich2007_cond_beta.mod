COMMENT
netbabel: Izhikevich (2007) neuron with beta (difference-of-exponentials) conductance
synapses, stepped as jNeuroML (jLEMS) steps NeuroML2's izhikevich2007Cell with
expTwoSynapse synapses: forward Euler on the dt grid. There is no NEST model to follow.

Step from T_k-1 to T_k (all right-hand sides with the state at T_k-1):
    g_ex = B_ex - A_ex, g_in = B_in - A_in                              (nS)
    V  += dt * (k (V - V_r)(V - V_t) + g_ex (E_ex - V) + g_in (E_in - V) - U + I_e + I_stim) / C_m
    U  += dt * a * (b (V - V_r) - U)
    A  = (A + f w) (1 - dt / tau_rise),  B = (B + f w) (1 - dt / tau_decay)  per receptor,
         w: the weights arrived at T_k-1, f: expTwoSynapse's peak normalisation
         1 / (exp(-t_p / tau_decay) - exp(-t_p / tau_rise)), t_p = log(tau_decay / tau_rise)
         tau_rise tau_decay / (tau_decay - tau_rise)  (a weight w gives a peak conductance w)
    if V > V_peak: V = V_reset, U += d, spike at T_k.
As in jLEMS, an input arriving at T_k-1 enters A and B in this step but reaches V one step
later (V's derivative uses the conductance of T_k-1 before the arrival).

Driving and timing as in the other netbabel cells (nb_iaf_psc_alpha.mod): a self-event at
T_k + 0.49 dt performs the step to T_k. weight[0]: peak conductance (nS; > 0 excitatory,
else inhibitory with |w|), weight[1]: change of the injected current I_stim (pA), which
applies from the next step on. A spike of time T_k is emitted at T_k + 0.49 dt; connections
from this cell use the delay d - 0.49 dt, so it arrives at T_k + d. Fixed step only.
As NEURON's Exp2Syn, tau_rise is capped at 0.9999 tau_decay.
ENDCOMMENT

NEURON {
    THREADSAFE
    ARTIFICIAL_CELL nb_izhikevich2007_cond_beta
    RANGE V_m, U_m, C_m, k, V_r, V_t, V_peak, V_reset, a, b, d, E_ex, E_in
    RANGE tau_rise_ex, tau_decay_ex, tau_rise_in, tau_decay_in, I_e
    RANGE g_ex, g_in, I_stim
}

PARAMETER {
    V_m = -60 (mV)
    U_m = 0 (pA)
    C_m = 100 (pF)
    k = 0.7
    V_r = -60 (mV)
    V_t = -40 (mV)
    V_peak = 35 (mV)
    V_reset = -50 (mV)
    a = 0.03
    b = -2
    d = 100 (pA)
    E_ex = 0 (mV)
    E_in = -80 (mV)
    tau_rise_ex = 0.5 (ms)
    tau_decay_ex = 5 (ms)
    tau_rise_in = 1 (ms)
    tau_decay_in = 10 (ms)
    I_e = 0 (pA)
}

ASSIGNED {
    A_ex
    B_ex
    A_in
    B_in
    g_ex (nS)
    g_in (nS)
    f_ex
    f_in
    tr_ex (ms)
    tr_in (ms)
    I_stim (pA)
    arrived_ex (nS)
    arrived_in (nS)
    buf_ex (nS)
    buf_in (nS)
    buf_cur (pA)
    nstep
}

FUNCTION peak_factor(tau_rise, tau_decay) {
    LOCAL tp
    tp = log(tau_decay / tau_rise) * tau_rise * tau_decay / (tau_decay - tau_rise)
    peak_factor = 1 / (exp(-tp / tau_decay) - exp(-tp / tau_rise))
}

INITIAL {
    tr_ex = tau_rise_ex
    if (tr_ex / tau_decay_ex > 0.9999) {
        tr_ex = 0.9999 * tau_decay_ex
    }
    tr_in = tau_rise_in
    if (tr_in / tau_decay_in > 0.9999) {
        tr_in = 0.9999 * tau_decay_in
    }
    f_ex = peak_factor(tr_ex, tau_decay_ex)
    f_in = peak_factor(tr_in, tau_decay_in)
    A_ex = 0
    B_ex = 0
    A_in = 0
    B_in = 0
    g_ex = 0
    g_in = 0
    I_stim = 0
    arrived_ex = 0
    arrived_in = 0
    buf_ex = 0
    buf_in = 0
    buf_cur = 0
    nstep = 1
    net_send(1.49 * dt, 1)
}

NET_RECEIVE(weight, dcur) {
    LOCAL vold, uold
    INITIAL {
        : keeps dcur as set by the user (NEURON zeroes the weights after the first without this block)
    }
    if (flag == 1) {
        : the step from T_k-1 to T_k, handled at T_k + 0.49 dt
        vold = V_m
        uold = U_m
        g_ex = B_ex - A_ex
        g_in = B_in - A_in
        V_m = vold + dt * (k * (vold - V_r) * (vold - V_t) + g_ex * (E_ex - vold) + g_in * (E_in - vold)
                           - uold + I_e + I_stim) / C_m
        U_m = uold + dt * a * (b * (vold - V_r) - uold)
        A_ex = (A_ex + f_ex * arrived_ex) * (1 - dt / tr_ex)
        B_ex = (B_ex + f_ex * arrived_ex) * (1 - dt / tau_decay_ex)
        A_in = (A_in + f_in * arrived_in) * (1 - dt / tr_in)
        B_in = (B_in + f_in * arrived_in) * (1 - dt / tau_decay_in)
        arrived_ex = buf_ex
        arrived_in = buf_in
        buf_ex = 0
        buf_in = 0
        if (V_m > V_peak) {
            V_m = V_reset
            U_m = U_m + d
            net_event(t)
        }
        I_stim = I_stim + buf_cur
        buf_cur = 0
        nstep = nstep + 1
        net_send((nstep + 0.49) * dt - t, 1)
    } else {
        if (weight > 0) {
            buf_ex = buf_ex + weight
        } else {
            buf_in = buf_in - weight
        }
        buf_cur = buf_cur + dcur
    }
}
