"""Optional dependencies: the features the core install leaves out say which extra brings them.

``pip install mlpgraph`` is enough for :class:`mlpgraph.Lifter` and ``mlpgraph predict``. Drawing,
video, ONNX export and the pipeline need extras (pyproject.toml); a command that needs a missing
one stops with one line naming the ``pip install`` that adds it, before it reads or writes anything.
"""

from __future__ import annotations

import importlib.util

from mlpgraph.errors import UserInputError

# Extra -> the modules it provides that the features below import.
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "viz": ("matplotlib", "PIL"),
    "video": ("matplotlib", "PIL", "imageio_ffmpeg"),
    "export": ("onnx", "onnxruntime", "onnxscript"),
    "pipeline": ("matplotlib", "PIL", "h5py", "scipy", "yaml", "pydantic", "mlflow"),
}
# Module -> the package that installs it, where the names differ.
PACKAGE_OF_MODULE = {"PIL": "pillow", "imageio_ffmpeg": "imageio-ffmpeg", "yaml": "pyyaml"}


def missing_modules(modules: tuple[str, ...]) -> list[str]:
    """The top-level ``modules`` that cannot be imported here."""
    return [name for name in modules if importlib.util.find_spec(name) is None]


def require_extra(extra: str, feature: str) -> None:
    """Raise a one-line :class:`UserInputError` unless the modules of ``extra`` are installed.

    ``feature`` names what needs them (``--gif``, ``export --format onnx``) for the message.
    """
    missing = [PACKAGE_OF_MODULE.get(name, name) for name in missing_modules(EXTRA_MODULES[extra])]
    if missing:
        raise UserInputError(
            f"{feature} needs {', '.join(missing)}, which this install lacks: pip install 'mlpgraph[{extra}]'"
        )
