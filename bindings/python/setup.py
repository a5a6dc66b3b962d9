"""Builds the libanalytics Python package by running CMake on the repository.

    python3 -m venv --system-site-packages .venv && . .venv/bin/activate
    pip install ./bindings/python

There is deliberately no pyproject.toml: without one, pip builds with the
installed setuptools instead of an isolated environment that would download
it, so the command works offline.

Everything comes from Debian 12 packages (python3-setuptools, pybind11-dev,
python3-dev, cmake, ninja-build and the library's -dev packages): nothing is
downloaded. The repository root is two levels above this file. The CMake build
directory defaults to a temporary one inside setuptools' build_temp; set
ANALYTICS_PY_BUILD_DIR to reuse one between installs. CMAKE_BUILD_PARALLEL_LEVEL
sets the build's parallelism (default 2).
"""
import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    """Configures the repository with CMake and builds the _libanalytics target."""

    def build_extension(self, ext):
        if not os.path.exists(os.path.join(REPO, "libanalytics", "CMakeLists.txt")):
            raise RuntimeError(f"libanalytics sources not found in {REPO}; build from "
                               "the repository (pip install ./bindings/python)")
        build_dir = os.environ.get("ANALYTICS_PY_BUILD_DIR") or os.path.join(
            os.path.abspath(self.build_temp), "cmake")
        os.makedirs(build_dir, exist_ok=True)
        cmake = shutil.which("cmake") or "/usr/bin/cmake"
        configure = [
            cmake, "-S", REPO, "-B", build_dir,
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DPython3_EXECUTABLE={sys.executable}",
        ]
        if shutil.which("ninja"):
            configure += ["-G", "Ninja"]
        if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")) or \
                "ANALYTICS_PY_BUILD_DIR" in os.environ:
            subprocess.check_call(configure)
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
        subprocess.check_call([cmake, "--build", build_dir, "--target", "_libanalytics",
                               "-j", jobs])
        built_pkg = os.path.join(build_dir, "python", "libanalytics")
        module = [f for f in os.listdir(built_pkg)
                  if f.startswith("_libanalytics") and f.endswith(".so")]
        if len(module) != 1:
            raise RuntimeError(f"expected one _libanalytics*.so in {built_pkg}, got {module}")
        dest = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(os.path.join(built_pkg, module[0]), dest)


setup(
    name="libanalytics",
    version="0.1.0",
    description="Privacy-friendly web analytics engine (Python bindings of libanalytics)",
    packages=["libanalytics"],
    package_data={"libanalytics": ["py.typed", "__init__.pyi"]},
    ext_modules=[CMakeExtension("libanalytics._libanalytics")],
    cmdclass={"build_ext": CMakeBuild},
    python_requires=">=3.9",
    zip_safe=False,
)
