"""The compiled loops of netbabel.instantiate (netbabel/instantiate/_kernels.c); everything else is in
pyproject.toml. The extension is optional: without a C compiler netbabel installs and runs on numpy alone
(slower for large models; `netbabel.instantiate.kernels.AVAILABLE` says which)."""

from pathlib import Path

import numpy
from setuptools import Extension, setup

NUMPY_RANDOM_LIB = Path(numpy.__file__).parent / "random" / "lib"  # libnpyrandom.a, numpy's C random library

setup(ext_modules=[Extension(
    "netbabel.instantiate._kernels", ["netbabel/instantiate/_kernels.c"],
    include_dirs=[numpy.get_include()], library_dirs=[str(NUMPY_RANDOM_LIB)], libraries=["npyrandom", "m"],
    extra_compile_args=["-O3", "-std=c99"], optional=True,
)])
