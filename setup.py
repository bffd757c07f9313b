"""Build script for the one C extension, ``becomingone.core._fused`` (metadata: pyproject.toml).

The extension is optional: when it cannot be compiled, the install goes on and
``becomingone.core.kernels`` uses its NumPy path (``kernels.COMPILED`` is then False). It uses
only the limited C API of Python 3.11 (one ``abi3`` wheel for every later Python), is built
with -O3 and -fopenmp-simd, and never with -march=native or -ffast-math (docs/kairos.md).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "becomingone.core._fused",
            sources=["src/becomingone/core/_fused.c"],
            define_macros=[("Py_LIMITED_API", "0x030B0000")],
            extra_compile_args=["-O3", "-fopenmp-simd"],
            py_limited_api=True,
            optional=True,
        )
    ],
    options={"bdist_wheel": {"py_limited_api": "cp311"}},
)
