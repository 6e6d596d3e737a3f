COMMENT
netbabel: adaptive exponential integrate-and-fire neuron (Brette & Gerstner 2005)
with exponential conductances, stepped like NEST 3.10's aeif_cond_exp: per dt step,
GSL's adaptive Runge-Kutta-Fehlberg 4(5) (gsl_odeiv rkf45 stepper with the yp-control,
eps_abs = eps_rel = gsl_error_tol = 1e-6, the step size carried over between steps),
re-implemented here from the published algorithm; spikes are detected after every
integration sub-step (V_m >= V_peak, or V_th when Delta_T = 0), V is clamped to
V_reset while refractory and bounded by V_peak inside the dynamics; input spikes are
added to the conductances after the step.

Driving and timing as in nb_iaf_psc_alpha.mod: a self-event at T_k + 0.49 dt
performs NEST's whole step k-1. weight[0]: conductance jump (nS; > 0 excitatory,
else inhibitory with |w|), weight[1]: change of the injected current (pA). A spike
of NEST time T_k is emitted at T_k + 0.49 dt; connections from this cell use the
delay d - 0.49 dt. V_m and w are NEST's values at the last grid time handled.
ENDCOMMENT

NEURON {
    THREADSAFE
    ARTIFICIAL_CELL nb_aeif_cond_exp
    RANGE V_m, w, C_m, g_L, E_L, V_th, Delta_T, tau_w, a, b, V_reset, V_peak, t_ref
    RANGE E_ex, E_in, tau_syn_ex, tau_syn_in, I_e, gsl_error_tol
    RANGE g_ex, g_in, I_stim, r_ref, h_int
}

PARAMETER {
    V_m = -70.6 (mV)
    w = 0 (pA)
    C_m = 281 (pF)
    g_L = 30 (nS)
    E_L = -70.6 (mV)
    V_th = -50.4 (mV)
    Delta_T = 2 (mV)
    tau_w = 144 (ms)
    a = 4 (nS)
    b = 80.5 (pA)
    V_reset = -60 (mV)
    V_peak = 0 (mV)
    t_ref = 0 (ms)
    E_ex = 0 (mV)
    E_in = -85 (mV)
    tau_syn_ex = 0.2 (ms)
    tau_syn_in = 2 (ms)
    I_e = 0 (pA)
    gsl_error_tol = 1e-6
}

ASSIGNED {
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
    double cm, gl, el, vth, deltat, tauw, sub_a, sub_b, vreset, vpeak_dyn, vpeak_spike, eex, ein, tex, tin, ie, istim, tol;
    double refr;  /* NEST's r_: refractory steps left (counted down after the step) */
    double counts;
} nb_aeif_params;

static void nb_aeif_dynamics(const nb_aeif_params* p, const double y[4], double f[4]) {
    const int is_refractory = p->refr > 0;
    const double V = is_refractory ? p->vreset : (y[0] < p->vpeak_dyn ? y[0] : p->vpeak_dyn);
    const double g_e = y[1];
    const double g_i = y[2];
    const double adapt = y[3];
    const double I_syn_exc = g_e * (V - p->eex);
    const double I_syn_inh = g_i * (V - p->ein);
    const double I_spike = p->deltat == 0. ? 0. : (p->gl * p->deltat * exp((V - p->vth) / p->deltat));
    f[0] = is_refractory ? 0. : (-p->gl * (V - p->el) + I_spike - I_syn_exc - I_syn_inh - adapt + p->ie + p->istim) / p->cm;
    f[1] = -g_e / p->tex;
    f[2] = -g_i / p->tin;
    f[3] = (p->sub_a * (V - p->el) - adapt) / p->tauw;
}

static void nb_aeif_rkf45(const nb_aeif_params* p, double h, double y[4], double yerr[4],
                          const double dydt_in[4], double dydt_out[4]) {
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
    double k1[4], k2[4], k3[4], k4[4], k5[4], k6[4], ytmp[4];
    int i;
    for (i = 0; i < 4; i++) k1[i] = dydt_in[i];
    for (i = 0; i < 4; i++) ytmp[i] = y[i] + ah[0] * h * k1[i];
    nb_aeif_dynamics(p, ytmp, k2);
    for (i = 0; i < 4; i++) ytmp[i] = y[i] + h * (b3[0] * k1[i] + b3[1] * k2[i]);
    nb_aeif_dynamics(p, ytmp, k3);
    for (i = 0; i < 4; i++) ytmp[i] = y[i] + h * (b4[0] * k1[i] + b4[1] * k2[i] + b4[2] * k3[i]);
    nb_aeif_dynamics(p, ytmp, k4);
    for (i = 0; i < 4; i++) ytmp[i] = y[i] + h * (b5[0] * k1[i] + b5[1] * k2[i] + b5[2] * k3[i] + b5[3] * k4[i]);
    nb_aeif_dynamics(p, ytmp, k5);
    for (i = 0; i < 4; i++)
        ytmp[i] = y[i] + h * (b6[0] * k1[i] + b6[1] * k2[i] + b6[2] * k3[i] + b6[3] * k4[i] + b6[4] * k5[i]);
    nb_aeif_dynamics(p, ytmp, k6);
    for (i = 0; i < 4; i++) {
        const double d_i = c1 * k1[i] + c3 * k3[i] + c4 * k4[i] + c5 * k5[i] + c6 * k6[i];
        y[i] += h * d_i;
    }
    nb_aeif_dynamics(p, y, dydt_out);
    for (i = 0; i < 4; i++)
        yerr[i] = h * (ec[1] * k1[i] + ec[3] * k3[i] + ec[4] * k4[i] + ec[5] * k5[i] + ec[6] * k6[i]);
}

/* GSL's standard control with a_y = 0, a_dydt = 1 (yp control), order 5; 1 = decrease */
static int nb_aeif_hadjust(double tol, const double y[4], const double yerr[4], const double yp[4], double* h) {
    const double eps_abs = tol, eps_rel = tol, a_y = 0.0, a_dydt = 1.0, S = 0.9;
    const double h_old = *h;
    double rmax = DBL_MIN;
    int i;
    for (i = 0; i < 4; i++) {
        const double D0 = eps_rel * (a_y * fabs(y[i]) + a_dydt * fabs(h_old * yp[i])) + eps_abs;
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

/* one gsl_odeiv_evolve_apply over at most (tt, tend]; returns the new time */
static double nb_aeif_evolve(const nb_aeif_params* p, double y[4], double* h, double tt, double tend) {
    const double t0 = tt;
    double h0 = *h;
    const double dt_left = tend - t0;
    double y0[4], yerr[4], dydt_in[4], dydt_out[4];
    int final_step, i;
    for (i = 0; i < 4; i++) y0[i] = y[i];
    nb_aeif_dynamics(p, y, dydt_in);
try_step:
    if (h0 > dt_left) {
        h0 = dt_left;
        final_step = 1;
    } else {
        final_step = 0;
    }
    nb_aeif_rkf45(p, h0, y, yerr, dydt_in, dydt_out);
    tt = final_step ? tend : t0 + h0;
    {
        const double h_old = h0;
        if (nb_aeif_hadjust(p->tol, y, yerr, dydt_out, &h0) == 1) {
            volatile double t_curr = tt;
            volatile double t_next = tt + h0;
            if (fabs(h0) < fabs(h_old) && t_next != t_curr) {
                for (i = 0; i < 4; i++) y[i] = y0[i];
                goto try_step;
            } else {
                h0 = h_old;
            }
        }
    }
    *h = h0;
    return tt;
}

/* NEST's step: integrate over (0, tend] with spike detection after every sub-step; the number of spikes */
static int nb_aeif_step(nb_aeif_params* p, double y[4], double* h, double tend) {
    double tt = 0.0;
    int spikes = 0;
    while (tt < tend) {
        tt = nb_aeif_evolve(p, y, h, tt, tend);
        if (p->refr > 0) {
            y[0] = p->vreset;
        } else if (y[0] >= p->vpeak_spike) {
            y[0] = p->vreset;
            y[3] += p->sub_b;
            p->refr = p->counts > 0 ? p->counts + 1 : 0;
            spikes++;
        }
    }
    return spikes;
}
ENDVERBATIM

NET_RECEIVE(weight, dcur) {
    LOCAL nspikes
    INITIAL {
        : keeps dcur as set by the user (NEURON zeroes the weights after the first without this block)
    }
    if (flag == 1) {
        : NEST's step from T_k-1 to T_k, handled at T_k + 0.49 dt
VERBATIM
        {
            nb_aeif_params p;
            double y[4];
            p.cm = C_m; p.gl = g_L; p.el = E_L; p.vth = V_th; p.deltat = Delta_T; p.tauw = tau_w;
            p.sub_a = a; p.sub_b = b; p.vreset = V_reset; p.vpeak_dyn = V_peak;
            p.vpeak_spike = Delta_T > 0. ? V_peak : V_th;
            p.eex = E_ex; p.ein = E_in; p.tex = tau_syn_ex; p.tin = tau_syn_in; p.ie = I_e; p.istim = I_stim;
            p.tol = gsl_error_tol; p.refr = r_ref; p.counts = ref_counts;
            y[0] = V_m; y[1] = g_ex; y[2] = g_in; y[3] = w;
            _lnspikes = nb_aeif_step(&p, y, &h_int, dt);
            V_m = y[0]; g_ex = y[1]; g_in = y[2]; w = y[3];
            r_ref = p.refr;
        }
ENDVERBATIM
        if (r_ref > 0) {
            r_ref = r_ref - 1
        }
        g_ex = g_ex + buf_ex
        g_in = g_in + buf_in
        buf_ex = 0
        buf_in = 0
        while (nspikes > 0) {
            net_event(t)
            nspikes = nspikes - 1
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
