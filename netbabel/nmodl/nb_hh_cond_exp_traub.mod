COMMENT
netbabel: Hodgkin-Huxley neuron after Traub and Miles (1991) with exponential
conductances, stepped like NEST 3.10's hh_cond_exp_traub: per dt step, GSL's
adaptive Runge-Kutta-Fehlberg 4(5) (rkf45 stepper, standard y-control with
eps_abs = 1e-3, eps_rel = 0, step size carried over), re-implemented from the
published algorithm; input spikes are added to the conductances after the step;
a spike is emitted when V_m >= V_T + 30 mV and V_m fell during the step (the
peak), then t_ref steps without detection. The gating variables start at their
equilibrium for V = -60 mV, as NEST's model does (NEST computes them from its
default E_L when a neuron is created).

Driving and timing as in nb_iaf_psc_alpha.mod: a self-event at T_k + 0.49 dt
performs NEST's whole step k-1. weight[0]: conductance jump (nS; > 0 excitatory,
else inhibitory with |w|), weight[1]: change of the injected current (pA). A spike
of NEST time T_k is emitted at T_k + 0.49 dt; connections from this cell use the
delay d - 0.49 dt. V_m is NEST's V_m at the last grid time handled.
ENDCOMMENT

NEURON {
    THREADSAFE
    ARTIFICIAL_CELL nb_hh_cond_exp_traub
    RANGE V_m, E_L, C_m, g_Na, g_K, g_L, E_Na, E_K, V_T, E_ex, E_in, tau_syn_ex, tau_syn_in, t_ref, I_e
    RANGE Act_m, Inact_h, Act_n, g_ex, g_in, I_stim, r_ref, h_int
}

PARAMETER {
    V_m = -60 (mV)
    E_L = -60 (mV)
    C_m = 200 (pF)
    g_Na = 20000 (nS)
    g_K = 6000 (nS)
    g_L = 10 (nS)
    E_Na = 50 (mV)
    E_K = -90 (mV)
    V_T = -63 (mV)
    E_ex = 0 (mV)
    E_in = -80 (mV)
    tau_syn_ex = 5 (ms)
    tau_syn_in = 10 (ms)
    t_ref = 2 (ms)
    I_e = 0 (pA)
}

ASSIGNED {
    Act_m
    Inact_h
    Act_n
    g_ex (nS)
    g_in (nS)
    I_stim (pA)
    buf_ex (nS)
    buf_in (nS)
    buf_cur (pA)
    r_ref
    ref_counts
    h_int (ms)
    nstep
}

INITIAL {
    LOCAL tics, tics_step
    tics = floor(t_ref * 1000.0 + 0.5)
    tics_step = floor(dt * 1000.0 + 0.5)
    ref_counts = floor((tics + tics_step - 1) / tics_step)
VERBATIM
    {
        const double v0 = -60.0;  /* NEST's default E_L, from which it sets the gating variables */
        const double alpha_n = 0.032 * (15. - v0) / (exp((15. - v0) / 5.) - 1.);
        const double beta_n = 0.5 * exp((10. - v0) / 40.);
        const double alpha_m = 0.32 * (13. - v0) / (exp((13. - v0) / 4.) - 1.);
        const double beta_m = 0.28 * (v0 - 40.) / (exp((v0 - 40.) / 5.) - 1.);
        const double alpha_h = 0.128 * exp((17. - v0) / 18.);
        const double beta_h = 4. / (1. + exp((40. - v0) / 5.));
        Inact_h = alpha_h / (alpha_h + beta_h);
        Act_n = alpha_n / (alpha_n + beta_n);
        Act_m = alpha_m / (alpha_m + beta_m);
    }
ENDVERBATIM
    g_ex = 0
    g_in = 0
    I_stim = 0
    buf_ex = 0
    buf_in = 0
    buf_cur = 0
    r_ref = 0
    h_int = dt
    nstep = 1
    net_send(1.49 * dt, 1)
}

VERBATIM
#include <cfloat>
typedef struct {
    double gna, gk, gl, ena, ek, el, eex, ein, cm, vt, tex, tin, ie, istim;
} nb_hh_params;

static void nb_hh_dynamics(const nb_hh_params* p, const double y[6], double f[6]) {
    const double I_Na = p->gna * y[1] * y[1] * y[1] * y[2] * (y[0] - p->ena);
    const double I_K = p->gk * y[3] * y[3] * y[3] * y[3] * (y[0] - p->ek);
    const double I_L = p->gl * (y[0] - p->el);
    const double I_syn_exc = y[4] * (y[0] - p->eex);
    const double I_syn_inh = y[5] * (y[0] - p->ein);
    f[0] = (-I_Na - I_K - I_L - I_syn_exc - I_syn_inh + p->istim + p->ie) / p->cm;
    {
        const double V = y[0] - p->vt;
        const double alpha_n = 0.032 * (15. - V) / (exp((15. - V) / 5.) - 1.);
        const double beta_n = 0.5 * exp((10. - V) / 40.);
        const double alpha_m = 0.32 * (13. - V) / (exp((13. - V) / 4.) - 1.);
        const double beta_m = 0.28 * (V - 40.) / (exp((V - 40.) / 5.) - 1.);
        const double alpha_h = 0.128 * exp((17. - V) / 18.);
        const double beta_h = 4. / (1. + exp((40. - V) / 5.));
        f[1] = alpha_m - (alpha_m + beta_m) * y[1];
        f[2] = alpha_h - (alpha_h + beta_h) * y[2];
        f[3] = alpha_n - (alpha_n + beta_n) * y[3];
    }
    f[4] = -y[4] / p->tex;
    f[5] = -y[5] / p->tin;
}

static void nb_rkf45(const nb_hh_params* p, double h, double y[6], double yerr[6],
                     const double dydt_in[6], double dydt_out[6]) {
    static const double ah[] = {1.0 / 4.0, 3.0 / 8.0, 12.0 / 13.0, 1.0, 1.0 / 2.0};
    static const double b3[] = {3.0 / 32.0, 9.0 / 32.0};
    static const double b4[] = {1932.0 / 2197.0, -7200.0 / 2197.0, 7296.0 / 2197.0};
    static const double b5[] = {8341.0 / 4104.0, -32832.0 / 4104.0, 29440.0 / 4104.0, -845.0 / 4104.0};
    static const double b6[] = {-6080.0 / 20520.0, 41040.0 / 20520.0, -28352.0 / 20520.0, 9295.0 / 20520.0,
                                -5643.0 / 20520.0};
    static const double c1 = 902880.0 / 7618050.0;
    static const double c3 = 3953664.0 / 7618050.0;
    static const double c4 = 3855735.0 / 7618050.0;
    static const double c5 = -1371249.0 / 7618050.0;
    static const double c6 = 277020.0 / 7618050.0;
    static const double ec[] = {0.0, 1.0 / 360.0, 0.0, -128.0 / 4275.0, -2197.0 / 75240.0, 1.0 / 50.0, 2.0 / 55.0};
    double k1[6], k2[6], k3[6], k4[6], k5[6], k6[6], ytmp[6];
    int i;
    (void) ah;
    for (i = 0; i < 6; i++) k1[i] = dydt_in[i];
    for (i = 0; i < 6; i++) ytmp[i] = y[i] + ah[0] * h * k1[i];
    nb_hh_dynamics(p, ytmp, k2);
    for (i = 0; i < 6; i++) ytmp[i] = y[i] + h * (b3[0] * k1[i] + b3[1] * k2[i]);
    nb_hh_dynamics(p, ytmp, k3);
    for (i = 0; i < 6; i++) ytmp[i] = y[i] + h * (b4[0] * k1[i] + b4[1] * k2[i] + b4[2] * k3[i]);
    nb_hh_dynamics(p, ytmp, k4);
    for (i = 0; i < 6; i++) ytmp[i] = y[i] + h * (b5[0] * k1[i] + b5[1] * k2[i] + b5[2] * k3[i] + b5[3] * k4[i]);
    nb_hh_dynamics(p, ytmp, k5);
    for (i = 0; i < 6; i++)
        ytmp[i] = y[i] + h * (b6[0] * k1[i] + b6[1] * k2[i] + b6[2] * k3[i] + b6[3] * k4[i] + b6[4] * k5[i]);
    nb_hh_dynamics(p, ytmp, k6);
    for (i = 0; i < 6; i++) {
        const double d_i = c1 * k1[i] + c3 * k3[i] + c4 * k4[i] + c5 * k5[i] + c6 * k6[i];
        y[i] += h * d_i;
    }
    nb_hh_dynamics(p, y, dydt_out);
    for (i = 0; i < 6; i++)
        yerr[i] = h * (ec[1] * k1[i] + ec[3] * k3[i] + ec[4] * k4[i] + ec[5] * k5[i] + ec[6] * k6[i]);
}

/* the standard step-size control (y-control: eps_abs = 1e-3, eps_rel = 0), order 5; 1 = decrease */
static int nb_hadjust(const double y[6], const double yerr[6], double* h) {
    const double eps_abs = 1e-3, eps_rel = 0.0, S = 0.9;
    const double h_old = *h;
    double rmax = DBL_MIN;
    int i;
    for (i = 0; i < 6; i++) {
        const double D0 = eps_rel * (1.0 * fabs(y[i])) + eps_abs;
        const double r = fabs(yerr[i]) / fabs(D0);
        rmax = r > rmax ? r : rmax;
    }
    if (rmax > 1.1) {
        double r = S / pow(rmax, 1.0 / 5.0);
        if (r < 0.2) r = 0.2;
        *h = r * h_old;
        return 1;
    } else if (rmax < 0.5) {
        double r = S / pow(rmax, 1.0 / (5.0 + 1.0));
        if (r > 5.0) r = 5.0;
        if (r < 1.0) r = 1.0;
        *h = r * h_old;
        return 2;
    }
    return 0;
}

/* integrate over (0, t1] like NEST: repeated evolve_apply calls; *h carries the step size */
static void nb_cond_step(const nb_hh_params* p, double y[6], double* h, double tend) {
    double tt = 0.0;
    while (tt < tend) {
        const double t0 = tt;
        double h0 = *h;
        const double dt_left = tend - t0;
        double y0[6], yerr[6], dydt_in[6], dydt_out[6];
        int final_step, i;
        for (i = 0; i < 6; i++) y0[i] = y[i];
        nb_hh_dynamics(p, y, dydt_in);
    try_step:
        if (h0 > dt_left) {
            h0 = dt_left;
            final_step = 1;
        } else {
            final_step = 0;
        }
        nb_rkf45(p, h0, y, yerr, dydt_in, dydt_out);
        tt = final_step ? tend : t0 + h0;
        {
            const double h_old = h0;
            if (nb_hadjust(y, yerr, &h0) == 1) {
                volatile double t_curr = tt;
                volatile double t_next = tt + h0;
                if (fabs(h0) < fabs(h_old) && t_next != t_curr) {
                    for (i = 0; i < 6; i++) y[i] = y0[i];
                    goto try_step;
                } else {
                    h0 = h_old;
                }
            }
        }
        *h = h0;
    }
}
ENDVERBATIM

NET_RECEIVE(weight, dcur) {
    LOCAL U_old
    INITIAL {
        : keeps dcur as set by the user (NEURON zeroes the weights after the first without this block)
    }
    if (flag == 1) {
        : NEST's step from T_k-1 to T_k, handled at T_k + 0.49 dt
        U_old = V_m
VERBATIM
        {
            nb_hh_params p;
            double y[6];
            p.gna = g_Na; p.gk = g_K; p.gl = g_L; p.ena = E_Na; p.ek = E_K; p.el = E_L; p.eex = E_ex;
            p.ein = E_in; p.cm = C_m; p.vt = V_T; p.tex = tau_syn_ex; p.tin = tau_syn_in; p.ie = I_e;
            p.istim = I_stim;
            y[0] = V_m; y[1] = Act_m; y[2] = Inact_h; y[3] = Act_n; y[4] = g_ex; y[5] = g_in;
            nb_cond_step(&p, y, &h_int, dt);
            V_m = y[0]; Act_m = y[1]; Inact_h = y[2]; Act_n = y[3]; g_ex = y[4]; g_in = y[5];
        }
ENDVERBATIM
        g_ex = g_ex + buf_ex
        g_in = g_in + buf_in
        buf_ex = 0
        buf_in = 0
        if (r_ref > 0) {
            r_ref = r_ref - 1
        } else if (V_m >= V_T + 30 && U_old > V_m) {
            r_ref = ref_counts
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
