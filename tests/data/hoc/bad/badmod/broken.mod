: An NMODL file with a syntax error, for netbabel's tests.
NEURON {
    SUFFIX nbbroken
    RANGE g
}
PARAMETER { g = 0.001 (S/cm2) }
BREAKPOINT {
    this is not nmodl
}
