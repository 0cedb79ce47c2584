"""A run's parameters: which labs a command names, the notebook's ``parameters`` cell, and the values given,
checked against that cell before any kernel starts (LabkitError naming what is wrong otherwise)."""
from __future__ import annotations

import difflib
import logging
import os
from pathlib import Path
from typing import Any

from labkit import labs
from labkit.config import DEFAULT_PROFILE, LabkitError

_TYPE_NAMES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict, "tuple": tuple}


def lab_name(notebook: str | os.PathLike[str]) -> str:
    """The lab a notebook belongs to (see :func:`labkit.labs.lab_of_notebook`)."""
    return labs.lab_of_notebook(notebook)


def resolve_labs(names: list[str]) -> list[tuple[str, Path]]:
    """Map a lab id / 'all' / a .ipynb path to (lab, notebook path); unknown names raise LabkitError."""
    out: list[tuple[str, Path]] = []
    for name in names or ["all"]:
        if name == "all":
            out += [(lab.id, lab.notebook) for lab in labs.all_labs()]
        elif labs.find(name) is not None:
            out.append((name, labs.get(name).notebook))
        elif name.endswith(".ipynb"):
            out.append((lab_name(name), Path(name)))
        else:
            choices = [*labs.ids(), "all"]
            match = difflib.get_close_matches(name, choices, n=1)
            hint = f" Did you mean {match[0]!r}?" if match else ""
            raise LabkitError(f"Unknown lab {name!r}: expected one of {', '.join(choices)} or a .ipynb path.{hint}")
    return out


def parse_assignments(pairs: list[str] | None) -> dict[str, str]:
    """``["n_eval=20", "profile=offline"]`` → dict of raw strings (LabkitError for a malformed pair)."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise LabkitError(f"-p expects key=value, got {pair!r} (e.g. -p n_eval=20).")
        out[key.strip()] = value
    return out


def has_parameters_cell(nb: Any) -> bool:
    """Whether a code cell carries the papermill ``parameters`` tag."""
    return any(c.get("cell_type") == "code" and "parameters" in (c.get("metadata", {}).get("tags") or [])
               for c in nb.get("cells", []))


def inspect_parameters(notebook: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The notebook's parameters: name → {"type": python type or None, "type_name", "default" (source text), "help"}."""
    import papermill

    logging.getLogger("papermill").setLevel(logging.WARNING)  # it logs "Input Notebook: ..." on every inspection
    spec = papermill.inspect_notebook(str(notebook))
    out = {}
    for name, info in spec.items():
        type_name = (info.get("inferred_type_name") or "None").strip()
        out[name] = {"type": _TYPE_NAMES.get(type_name), "type_name": type_name,
                     "default": info.get("default"), "help": info.get("help", "")}
    # papermill infers nothing from `x = 5` without an annotation: use the default's literal
    for name, info in out.items():
        if info["type"] is None and info["default"] not in (None, "None"):
            try:
                import ast
                value = ast.literal_eval(info["default"])
            except (ValueError, SyntaxError):
                continue
            if value is not None:
                info["type"] = type(value)
                info["type_name"] = type(value).__name__
    return out


def with_profile_types(spec: dict[str, dict[str, Any]], lab: str, profile: str) -> dict[str, dict[str, Any]]:
    """``spec`` where a registered lab's setting left at None gets the type of the profile's value (so ``-p
    lora_r=abc`` is refused before a kernel starts, and ``-p lora_r=32`` arrives as an int)."""
    if labs.find(lab) is None:
        return spec
    out = {name: dict(info) for name, info in spec.items()}
    for name, value in labs.defaults(lab, profile).items():
        info = out.get(name)
        if info is not None and info["type"] is None:
            info["type"] = list if isinstance(value, list) else type(value)
            info["type_name"] = info["type"].__name__
            info["default"] = f"None, the {profile} profile's {value!r}"
    return out


def _coerce_cli(name: str, text: str, expected: type | None) -> Any:
    """A -p value given as text, converted to the expected type (or parsed as YAML when unknown)."""
    import yaml

    def bad() -> LabkitError:
        return LabkitError(f"Parameter {name!r} expects a value of type {expected.__name__}, got {text!r}.")

    if expected is str:
        return text
    if expected is bool:
        low = text.strip().lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise bad()
    if expected is int:
        try:
            return int(text)
        except ValueError:
            raise bad() from None
    if expected is float:
        try:
            return float(text)
        except ValueError:
            raise bad() from None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    if expected in (list, dict, tuple) and not isinstance(value, (list, dict, tuple)):
        raise bad()
    return value


def validate_parameters(spec: dict[str, dict[str, Any]], params: dict[str, Any], *,
                        notebook: str | os.PathLike[str] = "the notebook", from_cli: bool = False) -> dict[str, Any]:
    """Check names and types against the parameters cell; return the (coerced) parameters.

    Unknown names list the valid ones with a close-match suggestion; a value of
    the wrong type names the expected type. int is accepted where float is
    expected; bool is never accepted as a number.
    """
    valid = sorted(spec)
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name not in spec:
            match = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
            hint = f" Did you mean {match[0]!r}?" if match else ""
            raise LabkitError(f"Unknown parameter {name!r} for {Path(notebook).name}.{hint} "
                              f"Valid parameters: {', '.join(valid) or '(none: the notebook has no parameters cell)'}.")
        expected = spec[name]["type"]
        if from_cli and isinstance(value, str):
            value = _coerce_cli(name, value, expected)
        elif expected is not None and value is not None:
            ok = isinstance(value, expected) and not (expected in (int, float) and isinstance(value, bool))
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                ok, value = True, float(value)
            if expected in (list, tuple) and isinstance(value, (list, tuple)):
                ok = True
            if not ok:
                raise LabkitError(f"Parameter {name!r} of {Path(notebook).name} expects a value of type "
                                  f"{expected.__name__} (its default is {spec[name]['default']}), "
                                  f"got {type(value).__name__} {value!r}.")
        out[name] = value
    return out


def check_lab_dataset(lab: str, dataset: Any, *, notebook: str | os.PathLike[str] = "the notebook") -> str:
    """A ``dataset`` parameter checked before any kernel starts (see :func:`labkit.data.check_dataset`), against the
    splits a registered lab reads; LabkitError naming the notebook otherwise."""
    from labkit.data import check_dataset

    entry = labs.find(lab)
    try:
        return check_dataset(dataset, splits=entry.splits if entry is not None else ())
    except LabkitError as err:
        raise LabkitError(f"Parameter 'dataset' of {Path(notebook).name}: {err}") from None


def run_parameters(nb_path: Path, nb: Any, lab: str, given: dict[str, Any], *, profile: str | None,
                   lab_dir: Path, from_cli: bool) -> dict[str, Any]:
    """The parameters papermill hands the lab: ``given`` validated (and coerced) against the parameters cell,
    the dataset checked, and ``output_dir``/``profile`` filled in where the cell declares them."""
    spec = inspect_parameters(nb_path) if has_parameters_cell(nb) else {}
    spec = with_profile_types(spec, lab, str(given.get("profile") or profile or DEFAULT_PROFILE))
    params = validate_parameters(spec, given, notebook=nb_path, from_cli=from_cli)
    if params.get("dataset") is not None:  # the kernel runs elsewhere: hand it an absolute path
        params["dataset"] = check_lab_dataset(lab, params["dataset"], notebook=nb_path)
    if "output_dir" in spec:
        params.setdefault("output_dir", str(lab_dir))
    if "profile" in spec and profile is not None:
        params.setdefault("profile", profile)
    return params
