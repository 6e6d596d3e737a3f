: A hyperpolarisation-activated cation current (Ih), written for netbabel's tests.
: One gate, Boltzmann steady state, voltage-independent time constant scaled by temperature.

NEURON {
    SUFFIX nbih
    NONSPECIFIC_CURRENT ih
    RANGE gbar, eh, ih
    GLOBAL vhalf, slope, tau0, q10
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
}

PARAMETER {
    gbar = 0.0001 (S/cm2)
    eh = -30 (mV)
    vhalf = -80 (mV)
    slope = 8 (mV)
    tau0 = 40 (ms)
    q10 = 3
}

ASSIGNED {
    v (mV)
    celsius (degC)
    ih (mA/cm2)
    minf
    mtau (ms)
}

STATE { m }

BREAKPOINT {
    SOLVE states METHOD cnexp
    ih = gbar * m * (v - eh)
}

INITIAL {
    rates(v)
    m = minf
}

DERIVATIVE states {
    rates(v)
    m' = (minf - m) / mtau
}

PROCEDURE rates(v (mV)) {
    minf = 1 / (1 + exp((v - vhalf) / slope))
    mtau = tau0 / q10 ^ ((celsius - 22) / 10)
}
