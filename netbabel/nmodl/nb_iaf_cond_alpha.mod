COMMENT
netbabel: leaky integrate-and-fire neuron with alpha-shaped synaptic conductances,
stepped like NEST 3.10's iaf_cond_alpha: per dt step, GSL's adaptive Runge-Kutta-
Fehlberg 4(5) (gsl_odeiv rkf45 stepper, standard y-control with eps_abs = 1e-3,
eps_rel = 0, the step size carried over between steps), re-implemented here from
the published algorithm; V is clamped to V_reset while refractory and bounded by
V_th inside the dynamics; spikes are added to the conductance derivatives after the threshold check;
threshold at grid points. A spike of weight w adds w * e / tau_syn to dg.

Driving and timing as in nb_iaf_psc_alpha.mod: a self-event at T_k + 0.49 dt
performs NEST's whole step k-1. weight[0]: conductance jump (nS; > 0 excitatory,
else inhibitory with |w|), weight[1]: change of the injected current (pA). A spike
of NEST time T_k is emitted at T_k + 0.49 dt; connections from this cell use the
delay d - 0.49 dt. V_m is NEST's V_m at the last grid time handled.
ENDCOMMENT

NEURON {
    THREADSAFE
    ARTIFICIAL_CELL nb_iaf_cond_alpha
    RANGE V_m, E_L, C_m, t_ref, V_th, V_reset, E_ex, E_in, g_L, tau_syn_ex, tau_syn_in, I_e
    RANGE g_ex, dg_ex, g_in, dg_in, I_stim, r_ref, h_int
}

PARAMETER {
    V_m = -70 (mV)
    E_L = -70 (mV)
    C_m = 250 (pF)
    t_ref = 2 (ms)
    V_th = -55 (mV)
    V_reset = -60 (mV)
    E_ex = 0 (mV)
    E_in = -85 (mV)
    g_L = 16.6667 (nS)
    tau_syn_ex = 0.2 (ms)
    tau_syn_in = 2 (ms)
    I_e = 0 (pA)
}

ASSIGNED {
    g_ex (nS)
    dg_ex
    g_in (nS)
    dg_in
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
    g_ex = 0
    dg_ex = 0
    g_in = 0
    dg_in = 0
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
    double el, cm, vth, vreset, eex, ein, gl, tex, tin, ie, istim;
    int refractory;
} nb_cond_params;

static void nb_cond_dynamics(const nb_cond_params* p, const double y[5], double f[5]) {
    const double V = p->refractory ? p->vreset : (y[0] < p->vth ? y[0] : p->vth);
    const double I_syn_exc = y[2] * (V - p->eex);
    const double I_syn_inh = y[4] * (V - p->ein);
    const double I_leak = p->gl * (V - p->el);
    f[0] = p->refractory ? 0.0 : (-I_leak - I_syn_exc - I_syn_inh + p->istim + p->ie) / p->cm;
    f[1] = -y[1] / p->tex;
    f[2] = y[1] - (y[2] / p->tex);
    f[3] = -y[3] / p->tin;
    f[4] = y[3] - (y[4] / p->tin);
}

/* one rkf45 step of size h from y (in place), error estimate in yerr, derivative at the end in dydt_out */
static void nb_rkf45(const nb_cond_params* p, double h, double y[5], double yerr[5],
                     const double dydt_in[5], double dydt_out[5]) {
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
    double k1[5], k2[5], k3[5], k4[5], k5[5], k6[5], ytmp[5];
    int i;
    (void) ah;
    for (i = 0; i < 5; i++) k1[i] = dydt_in[i];
    for (i = 0; i < 5; i++) ytmp[i] = y[i] + ah[0] * h * k1[i];
    nb_cond_dynamics(p, ytmp, k2);
    for (i = 0; i < 5; i++) ytmp[i] = y[i] + h * (b3[0] * k1[i] + b3[1] * k2[i]);
    nb_cond_dynamics(p, ytmp, k3);
    for (i = 0; i < 5; i++) ytmp[i] = y[i] + h * (b4[0] * k1[i] + b4[1] * k2[i] + b4[2] * k3[i]);
    nb_cond_dynamics(p, ytmp, k4);
    for (i = 0; i < 5; i++) ytmp[i] = y[i] + h * (b5[0] * k1[i] + b5[1] * k2[i] + b5[2] * k3[i] + b5[3] * k4[i]);
    nb_cond_dynamics(p, ytmp, k5);
    for (i = 0; i < 5; i++)
        ytmp[i] = y[i] + h * (b6[0] * k1[i] + b6[1] * k2[i] + b6[2] * k3[i] + b6[3] * k4[i] + b6[4] * k5[i]);
    nb_cond_dynamics(p, ytmp, k6);
    for (i = 0; i < 5; i++) {
        const double d_i = c1 * k1[i] + c3 * k3[i] + c4 * k4[i] + c5 * k5[i] + c6 * k6[i];
        y[i] += h * d_i;
    }
    nb_cond_dynamics(p, y, dydt_out);
    for (i = 0; i < 5; i++)
        yerr[i] = h * (ec[1] * k1[i] + ec[3] * k3[i] + ec[4] * k4[i] + ec[5] * k5[i] + ec[6] * k6[i]);
}

/* the standard step-size control (y-control: eps_abs = 1e-3, eps_rel = 0), order 5; 1 = decrease */
static int nb_hadjust(const double y[5], const double yerr[5], double* h) {
    const double eps_abs = 1e-3, eps_rel = 0.0, S = 0.9;
    const double h_old = *h;
    double rmax = DBL_MIN;
    int i;
    for (i = 0; i < 5; i++) {
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
static void nb_cond_step(const nb_cond_params* p, double y[5], double* h, double tend) {
    double tt = 0.0;
    while (tt < tend) {
        const double t0 = tt;
        double h0 = *h;
        const double dt_left = tend - t0;
        double y0[5], yerr[5], dydt_in[5], dydt_out[5];
        int final_step, i;
        for (i = 0; i < 5; i++) y0[i] = y[i];
        nb_cond_dynamics(p, y, dydt_in);
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
                    for (i = 0; i < 5; i++) y[i] = y0[i];
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
    INITIAL {
        : keeps dcur as set by the user (NEURON zeroes the weights after the first without this block)
    }
    if (flag == 1) {
        : NEST's step from T_k-1 to T_k, handled at T_k + 0.49 dt
VERBATIM
        {
            nb_cond_params p;
            double y[5];
            p.el = E_L; p.cm = C_m; p.vth = V_th; p.vreset = V_reset; p.eex = E_ex; p.ein = E_in;
            p.gl = g_L; p.tex = tau_syn_ex; p.tin = tau_syn_in; p.ie = I_e; p.istim = I_stim;
            p.refractory = r_ref > 0;
            y[0] = V_m; y[1] = dg_ex; y[2] = g_ex; y[3] = dg_in; y[4] = g_in;
            nb_cond_step(&p, y, &h_int, dt);
            V_m = y[0]; dg_ex = y[1]; g_ex = y[2]; dg_in = y[3]; g_in = y[4];
        }
ENDVERBATIM
        if (r_ref > 0) {
            r_ref = r_ref - 1
            V_m = V_reset
        } else if (V_m >= V_th) {
            r_ref = ref_counts
            V_m = V_reset
            net_event(t)
        }
VERBATIM
        dg_ex += buf_ex * (1.0 * M_E / tau_syn_ex);
        dg_in += buf_in * (1.0 * M_E / tau_syn_in);
ENDVERBATIM
        buf_ex = 0
        buf_in = 0
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
