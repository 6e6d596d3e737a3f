"""Runners: export a model, simulate it in a subprocess, leave a SONATA spike report.

`common` is the shared machinery (work directory, subprocess with progress and log, MPI);
`options` applies `netbabel simulate`'s flags to a description. One module per simulator.
"""
