"""Build-time route compiler: routes -> generated dispatch module -> mypyc extension.

Never imported by the runtime (``cello.routing.loader`` loads what this produces).
"""

from .compile import CompileError, check_toolchain, compile_module, compile_modules
from .generate import generate_source, module_name

__all__ = [
    "CompileError",
    "check_toolchain",
    "compile_module",
    "compile_modules",
    "generate_source",
    "module_name",
]
