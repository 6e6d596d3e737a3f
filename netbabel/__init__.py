"""netbabel: one description of a spiking network, read from and written to every format."""

__version__ = "0.1.0"
FORMAT_VERSION = "1"
