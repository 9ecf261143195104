"""``load_model``: an object, an ``.onnx`` path or ``"package.module:factory"`` -> a Model.

Model references with a scheme, such as ``"registry:production"``, name a model that lives
elsewhere; whoever knows where registers a resolver for the scheme with
:func:`register_model_resolver` (deploy registers ``registry``), and
:meth:`~pytest_mlops.project.GateContext.load_model` asks :func:`model_resolver` for it. This
module is on the plugin's import path: the adapters load on first use.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_mlops.errors import ModelError
from pytest_mlops.models.base import BaseModel, Model, OutputKind

if TYPE_CHECKING:
    from pytest_mlops.config import ProjectConfig

__all__ = ["ModelResolver", "adapt", "load_model", "model_resolver", "register_model_resolver"]

#: ``resolver(spec, config)``: the model a reference such as ``"registry:production"`` names
ModelResolver = Callable[[str, "ProjectConfig"], Model]

_RESOLVERS: dict[str, ModelResolver] = {}

_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pt", ".pth", ".sav", ".dill", ".cloudpkl")


def load_model(
    source: Any,
    *,
    output: OutputKind | str = "auto",
    base_dir: str | Path | None = None,
    name: str | None = None,
) -> Model:
    """Adapt *source* to the :class:`~pytest_mlops.models.base.Model` interface.

    Parameters
    ----------
    source:
        A fitted scikit-learn estimator or pipeline (or anything with ``predict``), a
        ``torch.nn.Module``, an ``onnxruntime.InferenceSession`` or ``onnx.ModelProto``, a path to an
        ``.onnx`` file, ``"package.module:factory"`` (the factory is called with no arguments and
        may return any of these), or a plain callable ``f(X) -> predictions``.
    output:
        What a single-output ONNX or PyTorch model returns: ``"labels"``, ``"probabilities"``,
        ``"logits"`` or ``"values"``; ``"auto"`` reads the model's metadata.
    base_dir:
        Directory against which relative paths and factory modules are resolved.

    Files are never unpickled: pickles and joblib dumps are refused with a message that says what
    to do instead.
    """
    if isinstance(source, BaseModel):
        return source
    if isinstance(source, str | Path):
        return _load_reference(
            str(source), output, Path(base_dir) if base_dir else Path.cwd(), name
        )
    return adapt(source, output=output, name=name)


def register_model_resolver(scheme: str, resolver: ModelResolver) -> None:
    """Resolve model references ``"<scheme>:..."`` with *resolver* (replacing an earlier one).

    Parameters
    ----------
    scheme:
        The part before the colon, e.g. ``"registry"``.
    resolver:
        ``resolver(spec, config)`` returns the :class:`~pytest_mlops.models.base.Model` that
        *spec* names for the project configured by *config*.
    """
    _RESOLVERS[scheme] = resolver


def model_resolver(spec: str) -> ModelResolver | None:
    """The resolver registered for the scheme of *spec*, or ``None`` (a path or a factory)."""
    scheme, sep, _ = spec.partition(":")
    return _RESOLVERS.get(scheme) if sep else None


def adapt(obj: Any, *, output: OutputKind | str = "auto", name: str | None = None) -> Model:
    """Wrap an in-memory model object in the right adapter."""
    if isinstance(obj, BaseModel):
        return obj
    mro = [f"{c.__module__}.{c.__qualname__}" for c in type(obj).__mro__]
    if "torch.nn.modules.module.Module" in mro:
        from pytest_mlops.models.torch import TorchModel

        return TorchModel(obj, output=_output(output), name=name)
    if any(m.startswith(("onnxruntime.", "onnx.onnx_ml_pb2.", "onnx.onnx_pb")) for m in mro):
        from pytest_mlops.models.onnx import OnnxModel

        return OnnxModel(obj, output=_output(output), name=name)
    if hasattr(obj, "predict") and callable(obj.predict):
        from pytest_mlops.models.sklearn import SklearnModel

        return SklearnModel(obj, name=name)
    if callable(obj):
        from pytest_mlops.models.callable import CallableModel

        return CallableModel(obj, name=name)
    raise ModelError(
        f"cannot use a {type(obj).__name__} as a model: expected a scikit-learn estimator, a "
        "torch.nn.Module, an ONNX model or session, or a callable f(X) -> predictions"
    )


def _output(value: str) -> OutputKind:
    choices = ("auto", "labels", "probabilities", "logits", "values")
    if value not in choices:
        raise ModelError(f"model output must be one of {choices}, got {value!r}")
    return value  # type: ignore[return-value]


def _load_reference(spec: str, output: str, base_dir: Path, name: str | None) -> Model:
    path = Path(spec).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    if spec.lower().endswith(_PICKLE_SUFFIXES):
        raise ModelError(
            f"refusing to load {spec!r}: pytest-mlops never unpickles model files, since "
            "unpickling runs arbitrary code. Export the model to ONNX, or set 'model' to "
            "'package.module:factory' naming a function in your code that builds or loads it"
        )
    if spec.lower().endswith(".onnx"):
        from pytest_mlops.models.onnx import OnnxModel

        if not path.is_file():
            raise ModelError(f"the model file {spec!r} does not exist (looked at {path})")
        return OnnxModel(path, output=_output(output), name=name)
    if ":" in spec and not path.exists():
        return adapt(_call_factory(spec, base_dir), output=output, name=name or spec)
    if path.exists():
        raise ModelError(
            f"cannot load the model file {spec!r}: only .onnx files are loaded from disk; "
            "for other models set 'model' to 'package.module:factory'"
        )
    raise ModelError(
        f"the model {spec!r} is neither an existing .onnx file nor 'package.module:factory' "
        f"(looked for the file at {path})"
    )


def _call_factory(spec: str, base_dir: Path) -> Any:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ModelError(f"model {spec!r}: expected 'package.module:factory'")
    added = str(base_dir) not in sys.path
    if added:
        sys.path.insert(0, str(base_dir))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ModelError(
                f"model {spec!r}: cannot import the module {module_name!r} "
                f"(searched {base_dir} and sys.path)"
            ) from None
        raise ModelError(f"model {spec!r}: importing {module_name!r} failed: {exc}") from exc
    except Exception as exc:
        raise ModelError(
            f"model {spec!r}: importing {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        if added:
            sys.path.remove(str(base_dir))
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ModelError(
                f"model {spec!r}: the module {module_name!r} has no attribute {attr!r}"
            )
        target = getattr(target, part)
    if not callable(target) or _is_model_object(target):
        return target  # a model object defined at module level
    try:
        return target()
    except Exception as exc:
        raise ModelError(f"model {spec!r}: the factory raised {type(exc).__name__}: {exc}") from exc


def _is_model_object(obj: Any) -> bool:
    """A fitted model instance (as opposed to a factory that returns one)."""
    if isinstance(obj, type):
        return False
    if isinstance(obj, BaseModel) or hasattr(obj, "predict"):
        return True
    return any(
        c.__module__.startswith(("torch.nn", "onnxruntime", "onnx")) for c in type(obj).__mro__
    )
