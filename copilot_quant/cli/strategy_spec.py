"""The strategy a command runs: the ``FILE:Class`` spec and its ``--param NAME=VALUE`` constructor arguments.

Every command that runs a user's strategy (``backtest``, ``live``, ``parity``) goes through
:func:`load_strategy`:

* :func:`load_strategy_class` finds the class: ``path/to/strategy.py:ClassName`` or
  ``package.module:ClassName`` (without ``:ClassName`` the module must define exactly one concrete
  :class:`~copilot_quant.backtest.strategy.Strategy` subclass);
* :func:`parse_params` reads the repeatable ``--param NAME=VALUE`` (``-p``) options. ``VALUE`` is a Python
  literal (:func:`ast.literal_eval`: ``10``, ``0.5``, ``True``, ``None``, ``'text'``, ``[1, 2]``,
  ``{'a': 1}``), or ``true``/``false``/``none`` in any case; anything else is the plain string, so
  ``-p symbol=AAPL`` gives ``'AAPL'`` (quote it, ``-p "symbol='None'"``, to get a string that reads as a
  literal);
* :func:`build_strategy` checks the names against ``inspect.signature(cls.__init__)`` (unknown names,
  unless the constructor takes ``**kwargs``, and missing required parameters are refused with the list of
  parameters the class accepts) and calls ``cls(**params)``.

Each problem — a malformed ``--param``, an unknown or missing name, a constructor that raises (a
``ValueError`` for ``fast >= slow``, say) — is a :class:`~copilot_quant.errors.ConfigError` or
:class:`~copilot_quant.errors.StrategyError`, which the commands report as one red ``Error:`` line and exit
code 2 (:mod:`copilot_quant.cli.exit_codes`).
"""

from __future__ import annotations

import ast
import copy
import difflib
import importlib
import importlib.util
import inspect
import keyword
import re
import reprlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from copilot_quant.cli.exit_codes import USAGE_ERROR, code_for
from copilot_quant.errors import ConfigError, CopilotQuantError, StrategyError

if TYPE_CHECKING:
    from copilot_quant.backtest.strategy import Strategy

__all__ = [
    "LoadedStrategy",
    "build_strategy",
    "describe_parameters",
    "format_call",
    "load_strategy",
    "load_strategy_class",
    "param_option",
    "parse_params",
    "parse_value",
]

_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")  # a Windows drive letter is not a class separator


# ------------------------------------------------------------------------------------- strategy loading
def _split_spec(spec: str) -> tuple[str, str | None]:
    text = spec.strip()
    if not text:
        raise StrategyError(
            "No strategy given; use path/to/strategy.py:ClassName or package.module:ClassName."
        )
    offset = 2 if _DRIVE.match(text) else 0
    where, sep, name = text[offset:].rpartition(":")
    if not sep:
        return text, None
    where = text[:offset] + where
    if not name.isidentifier():
        raise StrategyError(f"{name!r} in {spec!r} is not a class name; use path/to/strategy.py:ClassName.")
    return where, name


def _module_form(path: Path, class_name: str | None) -> str | None:
    """``package.module:Class`` for a relative ``path`` that names a file of an importable package.

    ``copilot_quant/examples/sma_cross.py`` works only from the repository root; the module form
    ``copilot_quant.examples.sma_cross`` works from anywhere. The file is looked up in the package's
    directories without importing anything.
    """
    if path.is_absolute() or path.suffix != ".py":
        return None
    parts = [part for part in path.with_suffix("").parts if part != "."]
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        return None
    try:
        package = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        return None
    locations = package.submodule_search_locations if package is not None else None
    if not locations or not any(Path(root, *parts[1:]).with_suffix(".py").is_file() for root in locations):
        return None
    return ".".join(parts) + (f":{class_name}" if class_name else "")


def _load_file(path: Path, class_name: str | None = None) -> ModuleType:
    if not path.is_file():
        suggestion = None if path.is_dir() else _module_form(path, class_name)
        if suggestion is not None:
            raise StrategyError(
                f"Strategy file {str(path)!r} not found in {Path.cwd()}; it is part of the installed "
                f"package {suggestion.split('.', 1)[0]!r}, so name it as a module instead, which works "
                f"from any directory: {suggestion}"
            )
        hint = " (it is a directory)" if path.is_dir() else ""
        raise StrategyError(
            f"Strategy file {str(path)!r} not found{hint}; give the path of a .py file, "
            "e.g. strategies/sma.py:SimpleMovingAverage."
        )
    # A unique module name per file, registered in sys.modules so dataclasses, pickling and relative
    # imports inside the user's file behave as for a normal import.
    name = "copilot_quant_user_" + re.sub(r"\W", "_", str(path.resolve().with_suffix("")))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise StrategyError(f"Cannot import {str(path)!r} as Python; strategy files must end in .py.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.resolve().parent))  # so the file can import its neighbours
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise StrategyError(
            f"Importing {str(path)!r} failed: {type(exc).__name__}: {exc}; fix the file and try again."
        ) from exc
    finally:
        sys.path.remove(str(path.resolve().parent))
    return module


def _load_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise StrategyError(
            f"Cannot find module {name!r} ({exc}); give a file path (strategies/sma.py:MyStrategy) "
            "or an importable module (mypackage.strategies:MyStrategy)."
        ) from exc
    except Exception as exc:
        raise StrategyError(f"Importing module {name!r} failed: {type(exc).__name__}: {exc}") from exc


def _strategies_in(module: ModuleType) -> list[str]:
    from copilot_quant.backtest.strategy import Strategy

    return sorted(
        name
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, Strategy) and not inspect.isabstract(obj)
    )


def load_strategy_class(spec: str) -> type[Strategy]:
    """The Strategy subclass named by ``spec``: ``path/to/file.py:ClassName`` or ``package.module:ClassName``.

    Without ``:ClassName`` the module must define exactly one concrete Strategy subclass. Raises
    :class:`~copilot_quant.errors.StrategyError` for a missing file, module or class, a class that is
    not a concrete ``Strategy``, or a file that fails to import.
    """
    from copilot_quant.backtest.strategy import Strategy

    where, name = _split_spec(spec)
    looks_like_file = where.endswith(".py") or "/" in where or "\\" in where or Path(where).is_file()
    module = _load_file(Path(where).expanduser(), name) if looks_like_file else _load_module(where)
    available = _strategies_in(module)
    if name is None:
        own = [n for n in available if getattr(module, n).__module__ == module.__name__] or available
        if len(own) != 1:
            listed = ", ".join(own) if own else "none"
            raise StrategyError(
                f"Say which strategy to run in {where!r} as {where}:ClassName (Strategy classes found: {listed})."
            )
        name = own[0]
    obj = getattr(module, name, None)
    if obj is None:
        listed = ", ".join(available) if available else "none"
        raise StrategyError(f"{where!r} has no class {name!r}; Strategy classes found there: {listed}.")
    if not inspect.isclass(obj) or not issubclass(obj, Strategy):
        raise StrategyError(
            f"{name!r} in {where!r} is not a Strategy; subclass copilot_quant.backtest.strategy.Strategy "
            "and implement on_data(timestamp, data)."
        )
    if inspect.isabstract(obj):
        missing = ", ".join(sorted(getattr(obj, "__abstractmethods__", ())))
        raise StrategyError(f"{name!r} in {where!r} is abstract; implement {missing}.")
    return obj


# ------------------------------------------------------------------------------------------- --param
PARAM_HELP = (
    "Strategy constructor parameter NAME=VALUE, repeatable: "
    "-p fast_period=10 -p slow_period=30 -p symbol=AAPL (parameters of the bundled SimpleMovingAverage). "
    "VALUE is a Python literal (10, 0.5, True, None, 'text', [1, 2]); anything else is a plain string."
)


def param_option() -> Any:
    """The ``--param NAME=VALUE`` / ``-p`` option, the same for every command that runs a strategy."""
    return typer.Option([], "--param", "-p", metavar="NAME=VALUE", help=PARAM_HELP)


#: Words taken as True/False/None in any case, besides the Python spellings literal_eval knows.
_WORDS: dict[str, Any] = {"true": True, "false": False, "none": None}


def parse_value(text: str) -> Any:
    """``text`` as a Python literal (``'10'`` → 10, ``'[1, 2]'`` → [1, 2], ``'true'`` → True), else ``text``."""
    word = text.strip()
    if word.lower() in _WORDS:
        return _WORDS[word.lower()]
    try:
        return ast.literal_eval(word)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return text  # not a literal (AAPL, 2020-01-01, foo bar): the string as given


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """The ``--param NAME=VALUE`` options as a dict; :class:`ConfigError` for a malformed or repeated one."""
    params: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(
                f"--param {item!r} is not NAME=VALUE; write it as e.g. --param fast_period=10 "
                "(or -p fast_period=10)."
            )
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ConfigError(
                f"--param {item!r}: {name!r} is not a parameter name; "
                "write it as e.g. --param fast_period=10."
            )
        if name in params:
            raise ConfigError(f"--param {name} is given twice; give each parameter once.")
        params[name] = parse_value(raw)
    return params


# ------------------------------------------------------------------------------------------- checking
_KEYWORD_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class _ShortRepr(reprlib.Repr):
    """``reprlib`` shortening, with numpy scalars shown as the Python numbers they hold (``4.8``, not
    ``np.float64(4.8)``): a value read from a DataFrame (a sweep's best row, say) is a numpy scalar."""

    def repr1(self, x: Any, level: int) -> str:
        if type(x).__module__ == "numpy" and hasattr(x, "item") and getattr(x, "ndim", None) == 0:
            x = x.item()
        return super().repr1(x, level)


_short = _ShortRepr()
_short.maxstring = _short.maxother = 80
_short.maxlist = _short.maxtuple = _short.maxdict = _short.maxset = 20


def _init_parameters(cls: type) -> list[inspect.Parameter] | None:
    """The parameters of ``cls.__init__`` without ``self``; None when Python cannot tell."""
    try:
        parameters = list(inspect.signature(cls.__init__).parameters.values())  # type: ignore[misc]
    except (TypeError, ValueError):
        return None
    if parameters and parameters[0].kind not in _VARIADIC:
        parameters = parameters[1:]  # self
    return parameters


def describe_parameters(cls: type) -> str:
    """The parameters ``cls`` accepts with their defaults: ``"period (required), quantity=10, symbol='AAPL'"``."""
    parameters = _init_parameters(cls)
    if parameters is None:
        return "unknown (its constructor has no signature Python can read)"
    parts = []
    for p in parameters:
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            parts.append(f"**{p.name} (any other name)")
        elif p.kind is inspect.Parameter.VAR_POSITIONAL:
            continue  # --param cannot fill *args
        elif p.kind is inspect.Parameter.POSITIONAL_ONLY:
            parts.append(f"{p.name} (positional-only, cannot be set by name)")
        elif p.default is inspect.Parameter.empty:
            parts.append(f"{p.name} (required)")
        else:
            parts.append(f"{p.name}={_short.repr(p.default)}")
    return ", ".join(parts) if parts else "none"


def format_call(cls: type, params: Mapping[str, Any]) -> str:
    """``Name(a=1, b='x')``: the constructor call ``params`` make (values shortened when very long)."""
    return f"{cls.__name__}({', '.join(f'{k}={_short.repr(v)}' for k, v in params.items())})"


def _check(cls: type, params: Mapping[str, Any]) -> None:
    parameters = _init_parameters(cls)
    if parameters is None:
        return  # cannot check: the call itself will say what is wrong
    described = describe_parameters(cls)
    accepted = "it takes no parameters." if described == "none" else f"its parameters: {described}."
    by_name = {p.name: p for p in parameters if p.kind in _KEYWORD_KINDS}
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        unknown = [name for name in params if name not in by_name]
        if unknown:
            names = ", ".join(repr(n) for n in unknown)
            close = difflib.get_close_matches(unknown[0], list(by_name), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise StrategyError(
                f"{cls.__name__} has no parameter {names}{hint}; {accepted}"
                if len(unknown) == 1
                else f"{cls.__name__} has no parameters {names}; {accepted}"
            )
    missing = [
        p.name
        for p in parameters
        if p.default is inspect.Parameter.empty
        and p.kind not in _VARIADIC
        and (p.name not in params or p.kind is inspect.Parameter.POSITIONAL_ONLY)
    ]
    if missing:
        flags = " ".join(f"-p {name}=VALUE" for name in missing)
        raise StrategyError(
            f"{cls.__name__} needs a value for {', '.join(missing)}; pass {flags} ({accepted[:-1]})."
        )


def build_strategy(cls: type[Strategy], params: Mapping[str, Any]) -> Strategy:
    """``cls(**params)`` after checking the names against its constructor's signature.

    Raises :class:`~copilot_quant.errors.StrategyError` (exit code 2) for an unknown name (unless the
    constructor takes ``**kwargs``), a missing required parameter, or a constructor that raises. The
    constructor gets a deep copy of ``params``, so the instance never shares a list or dict with the
    caller's mapping (which may build more instances from it).
    """
    _check(cls, params)
    call = format_call(cls, params)
    try:
        return cls(**copy.deepcopy(dict(params)))
    except CopilotQuantError as exc:
        if code_for(exc) != USAGE_ERROR:
            raise  # something out there failed (a broker, a data source): a runtime failure
        raise StrategyError(f"{call} failed: {exc}") from exc
    except TypeError as exc:
        raise StrategyError(
            f"{call} failed: TypeError: {exc}; its parameters: {describe_parameters(cls)}."
        ) from exc
    except Exception as exc:
        raise StrategyError(f"{call} failed: {type(exc).__name__}: {exc}") from exc


def _effective(cls: type, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with the defaults of the parameters not given, in the constructor's order."""
    parameters = _init_parameters(cls) or []
    out: dict[str, Any] = {}
    for p in parameters:
        if p.kind not in _KEYWORD_KINDS:
            continue
        if p.name in params:
            out[p.name] = params[p.name]
        elif p.default is not inspect.Parameter.empty:
            out[p.name] = p.default
    out.update((name, value) for name, value in params.items() if name not in out)  # **kwargs
    return out


@dataclass(frozen=True)
class LoadedStrategy:
    """The strategy a command runs: its class, the ``--param`` values given and the instance built."""

    cls: type[Strategy]
    params: dict[str, Any]
    instance: Strategy

    def describe(self) -> str:
        """The constructor call with every parameter, defaults included: ``SmaCross(fast=10, slow=30)``."""
        return format_call(self.cls, _effective(self.cls, self.params))

    def print_header(self, console: Console) -> None:
        """The run's header line, ``Strategy: SmaCross(fast=10, slow=30)``, unwrapped (copy-paste)."""
        console.print(f"Strategy: {escape(self.describe())}", soft_wrap=True)


def load_strategy(spec: str, params: Sequence[str] = ()) -> LoadedStrategy:
    """Load the class named by ``spec`` and build it from the ``--param NAME=VALUE`` strings ``params``.

    Raises :class:`~copilot_quant.errors.ConfigError` for a malformed ``--param`` and
    :class:`~copilot_quant.errors.StrategyError` for a bad spec, bad names or a constructor that raises.
    """
    values = parse_params(params)
    cls = load_strategy_class(spec)
    return LoadedStrategy(cls, values, build_strategy(cls, values))
