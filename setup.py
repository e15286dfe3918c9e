# Builds hlsrelay's Python extension `_core` with CMake and hands it to setuptools (see pyproject.toml).
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent.resolve()


def project_version() -> str:
    text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    match = re.search(r"project\(\s*hlsrelay\s+VERSION\s+([0-9][0-9.]*)", text)
    if not match:
        raise RuntimeError("cannot find project(hlsrelay VERSION ...) in CMakeLists.txt")
    return match.group(1)


class CMakeExtension(Extension):
    """An extension that CMake builds: `target` in the top-level project."""

    def __init__(self, name: str, target: str) -> None:
        super().__init__(name, sources=[])
        self.target = target


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        if not isinstance(ext, CMakeExtension):
            super().build_extension(ext)
            return
        # Where setuptools expects the module: build_lib here; for `pip install -e .` build_ext's
        # inplace step then copies it into python/hlsrelay/ where the editable finder looks.
        ext_path = Path(self.get_ext_fullpath(ext.name)).resolve()
        out_dir = ext_path.parent
        out_dir.mkdir(parents=True, exist_ok=True)
        config = "Debug" if self.debug else "Release"
        # A stable CMake tree, not build_temp: editable installs get a fresh build_temp each time,
        # and a C++ rebuild from scratch takes minutes.
        build_dir = ROOT / "build" / "setuptools" / f"cmake-{sys.implementation.cache_tag}-{config.lower()}"

        try:
            import pybind11

            pybind11_args = [f"-Dpybind11_DIR={pybind11.get_cmake_dir()}"]
        except ImportError:  # CMake may still find Debian's pybind11-dev
            pybind11_args = []
        args = [
            f"-DCMAKE_BUILD_TYPE={config}",
            "-DHLSRELAY_BUILD_PYTHON=ON",
            "-DHLSRELAY_BUILD_TESTS=OFF",
            "-DHLSRELAY_BUILD_SERVER=OFF",
            "-DHLSRELAY_BUILD_CAPI=OFF",
            "-DHLSRELAY_PYTHON_COPY_SOURCES=OFF",
            f"-DHLSRELAY_PYTHON_OUTPUT_DIR={out_dir}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DPYTHON_EXECUTABLE={sys.executable}",
            *pybind11_args,
            *shlex.split(os.environ.get("CMAKE_ARGS", "")),
        ]
        jobs = self.parallel or os.cpu_count() or 1
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build_dir), *args], check=True)
        subprocess.run(
            ["cmake", "--build", str(build_dir), "--target", ext.target, "--config", config, "--parallel", str(jobs)],
            check=True,
        )

        # pybind11 names the file with the interpreter's EXT_SUFFIX; rename it if setuptools
        # expects another spelling.
        if not ext_path.exists():
            built = sorted(out_dir.glob(ext.target + ".*.so")) + sorted(out_dir.glob(ext.target + ".so"))
            if not built:
                raise RuntimeError(f"CMake built no {ext.target}*.so in {out_dir}")
            built[0].replace(ext_path)


setup(
    version=project_version(),
    ext_modules=[CMakeExtension("hlsrelay._core", target="_core")],
    cmdclass={"build_ext": CMakeBuild},
    # Kept apart from the C++ build trees people put in build/.
    options={"build": {"build_base": "build/setuptools"}},
)
