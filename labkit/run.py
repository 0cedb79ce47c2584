"""Headless execution of lab notebooks with papermill.

:func:`execute` validates the parameters against the notebook's ``parameters``
cell **before** a kernel starts, then runs papermill in a child process (so a
per-lab wall-clock timeout can kill the kernel and everything it started) and
returns a :class:`RunResult`: where the executed notebook and its results
are, how long it took, and on failure the cell number, the exception and the
path of the partial notebook. The grader runs the same function inside a
:class:`labkit.sandbox.Sandbox`.

Layout of a run: ``OUT/<lab>/<notebook name>.ipynb``, ``OUT/<lab>/results.json``
and the lab's artifacts beside them (the lab gets ``output_dir=OUT/<lab>``).
"""
from __future__ import annotations

import difflib
import errno
import json
import logging
import os
import re
import secrets
import select
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labkit import labs
from labkit.config import DEFAULT_PROFILE, LabkitError

log = logging.getLogger(__name__)

# The runner reports how papermill ended on a pipe of its own (see StatusPipe), never in a file: the kernel runs
# the student's code with write access to the output folder, and could write a status of its choosing there.
STATUS_LIMIT_BYTES = 1 << 16
_TYPE_NAMES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict, "tuple": tuple}


@dataclass
class RunResult:
    """Outcome of one notebook execution."""

    lab: str
    notebook: Path                  # the source notebook
    output_notebook: Path           # the executed (possibly partial) notebook
    output_dir: Path                # OUT/<lab>: results.json and artifacts
    status: str = "ok"              # ok | error | cell_timeout | timeout | kernel_died | memory | processes | output_limit | crashed
    message: str = ""
    seconds: float = 0.0
    cell: int | None = None         # 1-based index of the failing cell in the source notebook
    cell_id: str | None = None
    exception: str | None = None    # "ValueError: bad thing"
    output_truncated: bool = False
    results: dict[str, Any] = field(default_factory=dict)
    peak_rss_mb: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every cell ran."""
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (paths as strings)."""
        d = asdict(self)
        for k in ("notebook", "output_notebook", "output_dir"):
            d[k] = str(d[k])
        return d


# ---------------------------------------------------------------- parameters

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


def read_notebook(path: str | os.PathLike[str], *, max_mb: float | None = None, follow_links: bool = True,
                  name: str | None = None) -> Any:
    """Read and validate a notebook; LabkitError saying what is wrong when it is not valid JSON/nbformat.

    The message names the problem, the file (``name`` when given, else the path) and the line and column;
    it never quotes the file's content (the grader reads files students made). ``max_mb``: a larger file is
    refused unread; ``follow_links=False``: a symbolic link is refused, never followed (the grader's own
    reads of what a submission left behind)."""
    p = Path(path)
    label = name or str(p)
    flags = os.O_RDONLY | (0 if follow_links else getattr(os, "O_NOFOLLOW", 0))
    try:
        fd = os.open(p, flags)
    except FileNotFoundError:
        raise LabkitError(f"Notebook {label} does not exist.") from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise LabkitError(f"{label} is a symbolic link; the grader reads no linked file: hand in the notebook "
                              "itself.") from None
        raise LabkitError(f"Notebook {label} cannot be read ({err.strerror}).") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise LabkitError(f"Notebook {label} is not a regular file (expected a .ipynb file).")
        if max_mb is not None and st.st_size > max_mb * 2**20:
            raise LabkitError(f"{label} is {st.st_size / 2**20:.0f} MB, more than the {max_mb:g} MB a notebook may "
                              "have: clear its outputs (Kernel > Restart Kernel and Clear Outputs), save, and hand "
                              "it in again.")
        data = fh.read() if max_mb is None else fh.read(int(max_mb * 2**20) + 1)
    return parse_notebook(data, label)


def parse_notebook(data: bytes, label: str = "the notebook") -> Any:
    """A notebook from its bytes (converted to nbformat 4); LabkitError naming the problem and where, never the
    content."""
    import nbformat

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise LabkitError(f"invalid notebook JSON in {label}: not UTF-8 text (byte {err.start}); save the notebook "
                          "again from Jupyter.") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise LabkitError(f"invalid notebook JSON in {label}: line {err.lineno}, column {err.colno}: {err.msg} "
                          "(expected a .ipynb file as Jupyter saves it).") from None
    except RecursionError:
        raise LabkitError(f"invalid notebook JSON in {label}: nested too deeply to be a notebook.") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise LabkitError(f"invalid notebook JSON in {label}: no list of cells.")
    try:
        from nbformat import reader  # what nbformat.reads does, without logging a schema error's quote of the file
        nb = nbformat.convert(reader.reads(text), 4)
    except Exception as err:  # nbformat raises assorted errors for malformed documents; their text may quote it
        version = raw.get("nbformat")
        shown = f" (nbformat {version})" if isinstance(version, int) and not isinstance(version, bool) else ""
        raise LabkitError(f"invalid notebook JSON in {label}: it does not follow the Jupyter notebook format"
                          f"{shown}: {type(err).__name__}.") from None
    if not isinstance(nb.get("cells"), list):
        raise LabkitError(f"invalid notebook JSON in {label}: no list of cells.")
    return nb


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


def parse_assignments(pairs: list[str] | None) -> dict[str, str]:
    """``["n_eval=20", "profile=offline"]`` → dict of raw strings (LabkitError for a malformed pair)."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise LabkitError(f"-p expects key=value, got {pair!r} (e.g. -p n_eval=20).")
        out[key.strip()] = value
    return out


# ---------------------------------------------------------------- execution

def execute(
    notebook: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    parameters: dict[str, Any] | None = None,
    *,
    profile: str | None = "offline",
    cell_timeout: float | None = 600,
    timeout: float | None = None,
    kernel_name: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    lab: str | None = None,
    from_cli: bool = False,
    sandbox: Any | None = None,
    max_output_mb: float | None = None,
    log_output: bool = False,
) -> RunResult:
    """Execute ``notebook`` with papermill into ``output_dir/<lab>/`` and return a RunResult.

    Parameters are validated against the parameters cell first (LabkitError,
    no kernel started). ``profile`` and ``output_dir`` are passed to the lab when
    its parameters cell declares them. ``cell_timeout`` bounds each cell,
    ``timeout`` the whole run (the kernel and its children are killed).
    ``sandbox`` (a labkit.sandbox.Sandbox) wraps the child process for untrusted
    notebooks. A failing run never raises: inspect ``result.status``/``message``.
    """
    nb_path = Path(notebook).resolve()
    nb = read_notebook(nb_path)
    lab = lab or lab_name(nb_path)
    lab_dir = Path(output_dir).resolve() / lab
    out_nb = lab_dir / nb_path.name
    spec = inspect_parameters(nb_path) if has_parameters_cell(nb) else {}
    given = dict(parameters or {})
    spec = with_profile_types(spec, lab, str(given.get("profile") or profile or DEFAULT_PROFILE))
    params = validate_parameters(spec, given, notebook=nb_path, from_cli=from_cli)
    if params.get("dataset") is not None:  # the kernel runs elsewhere: hand it an absolute path
        params["dataset"] = check_lab_dataset(lab, params["dataset"], notebook=nb_path)
    if "output_dir" in spec:
        params.setdefault("output_dir", str(lab_dir))
    if "profile" in spec and profile is not None:
        params.setdefault("profile", profile)
    lab_dir.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="labkit-run-") as tmp:
        status = StatusPipe()
        child_spec = {
            "input": str(nb_path), "output": str(out_nb), "parameters": params,
            "kernel_name": kernel_name, "cell_timeout": cell_timeout, "cwd": str(Path(cwd or nb_path.parent).resolve()),
            "status_fd": status.write_fd,
            "max_output_bytes": int(max_output_mb * 2**20) if max_output_mb else None, "log_output": log_output,
        }
        spec_file = Path(tmp) / "spec.json"
        if sandbox is not None:
            spec_file = Path(sandbox.scratch) / ".labkit-run-spec.json"
        spec_file.write_text(json.dumps(child_spec))
        argv = [sys.executable, "-m", "labkit.run", "--child", str(spec_file)]
        env = sandbox.environment() if sandbox is not None else None
        if sandbox is not None:
            argv = sandbox.command(argv)
        log.info("executing %s → %s", nb_path.name, out_nb)
        t0 = time.monotonic()
        result = RunResult(lab=lab, notebook=nb_path, output_notebook=out_nb, output_dir=lab_dir)
        runner_log = Path(tmp) / "runner.log"
        report = _run_child(argv, env=env, timeout=timeout, sandbox=sandbox, log_output=log_output, log_path=runner_log,
                            status=status)
        report.stderr_tail = _tail(runner_log)  # type: ignore[attr-defined]
        result.seconds = round(time.monotonic() - t0, 2)
        result.peak_rss_mb = round(report.peak_rss_mb, 1)
        child = status.result()
        _interpret(result, child, report, timeout=timeout, sandbox=sandbox, source_nb=nb)
    if result.output_notebook.is_file():
        try:
            from labkit.record import load_results, results_from_notebook
            rj = lab_dir / "results.json"
            result.results = load_results(rj) if rj.is_file() else results_from_notebook(read_notebook(out_nb))
        except (LabkitError, OSError, ValueError):
            result.results = {}
    return result


# stderr lines that never say why a process stopped: log records at warning level or below (a kernel's
# "running over TCP without encryption", traitlets' "[IPKernelApp] WARNING | ..."), debugger notes, progress bars
_NOISE = re.compile(r"^\[\w+\]|^\[[A-Z] |^\d+(\.\d+)?s - |\b(WARNING|INFO|DEBUG)\b|Warning\b|warnings\.warn|"
                    r"without encryption|eavesdropping|it/s\]|s/it\]|\d+%\|")
_EXCEPTION = re.compile(r"^[\w.]*(Error|Exception|Exit|Interrupt)\b")


def why_stopped(text: str, limit: int = 200) -> str:
    """The one line of a process's stderr that says why it stopped: its last exception line, else its last
    line that is not a warning, a log record or a progress bar; "" when there is none."""
    lines = [ln.strip() for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    lines = [ln for ln in lines if not _NOISE.search(ln)]
    errors = [ln for ln in lines if _EXCEPTION.match(ln)]
    line = (errors or lines or [""])[-1]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _tail(path: Path) -> str:
    """Why the runner stopped, from its stderr, when it wrote no status (see :func:`why_stopped`)."""
    try:
        return why_stopped(path.read_text(errors="replace"))
    except OSError:
        return ""


class StatusPipe:
    """The runner's status channel: a pipe the kernel has no end of, and a token it never sees.

    The parent hands the runner the pipe's write end (``pass_fds``) and a fresh random token on its stdin; the
    runner reads the token before any kernel starts, keeps the pipe's end out of every process it starts, and
    at the end writes its status as one JSON line carrying the token. Only such a line counts: whatever a
    notebook writes into a file, or manages to push into the pipe, is not the runner's word."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(16)
        self.read_fd, self.write_fd = os.pipe()
        self._data = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)

    def started(self) -> None:
        """The runner holds its own copy of the write end: close the parent's and start draining."""
        os.close(self.write_fd)
        self._thread.start()

    def _drain(self) -> None:
        deadline = None
        while True:
            if self._stop.is_set():
                deadline = deadline or time.monotonic() + 2.0
                if time.monotonic() > deadline:
                    return
            try:
                ready, _, _ = select.select([self.read_fd], [], [], 0.1)
                if not ready:
                    if self._stop.is_set():
                        return
                    continue
                chunk = os.read(self.read_fd, 4096)
            except OSError:
                return
            if not chunk:
                return
            if len(self._data) < STATUS_LIMIT_BYTES:
                self._data += chunk[: STATUS_LIMIT_BYTES - len(self._data)]

    def result(self) -> dict[str, Any]:
        """The runner's status (without the token), or {} when it wrote none."""
        self._stop.set()
        if self._thread.is_alive() or self._thread.ident is not None:
            self._thread.join(timeout=5)
        try:
            os.close(self.read_fd)
        except OSError:
            pass
        for line in reversed(bytes(self._data).splitlines()):
            try:
                got = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(got, dict) and secrets.compare_digest(str(got.pop("token", "")), self.token):
                return got
        return {}

    def close(self) -> None:
        """Close both ends (a run that never started)."""
        for fd in (self.write_fd, self.read_fd):
            try:
                os.close(fd)
            except OSError:
                pass


def _run_child(argv: list[str], *, env: dict[str, str] | None, timeout: float | None, sandbox: Any | None,
               log_output: bool, log_path: Path | None = None, status: StatusPipe | None = None) -> Any:
    from labkit.sandbox import Watchdog

    kwargs: dict[str, Any] = {}
    if sandbox is not None and sandbox.preexec() is not None:
        kwargs["preexec_fn"] = sandbox.preexec()
    if sandbox is not None:  # not the caller's folder (a checkout there would shadow the private labkit copy)
        kwargs["cwd"] = str(sandbox.scratch)
    log_fh = open(log_path, "wb") if (log_path is not None and not log_output) else None
    out = None if log_output else (log_fh or subprocess.DEVNULL)
    try:
        try:
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE if status else subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL if not log_output else None, stderr=out,
                                    start_new_session=True, pass_fds=(status.write_fd,) if status else (), **kwargs)
        except BaseException:
            if status is not None:
                status.close()
            raise
        if status is not None:
            status.started()
            try:  # the token, on the runner's stdin (it reads it before any kernel starts)
                proc.stdin.write((status.token + "\n").encode())  # type: ignore[union-attr]
                proc.stdin.close()  # type: ignore[union-attr]
            except OSError:  # the runner is gone already: it will have written nothing
                pass
        with Watchdog(proc, timeout=timeout, limits=getattr(sandbox, "limits", None),
                      containment=getattr(sandbox, "containment", None)) as dog:
            proc.wait()
    finally:
        if log_fh is not None:
            log_fh.close()
    dog.kill_tree()
    report = dog.report
    report.returncode = proc.returncode  # type: ignore[attr-defined]
    return report


def _source_cell(source_nb: Any, executed_index: int | None, executed_nb: Any | None) -> tuple[int | None, str | None]:
    """Map a cell index of the executed notebook (with papermill's injected cell) to the source's 1-based number."""
    if executed_index is None or executed_nb is None:
        return None, None
    try:
        cell = executed_nb.cells[executed_index]
    except IndexError:
        return None, None
    cid = cell.get("id")
    for i, src in enumerate(source_nb.cells):
        if cid and src.get("id") == cid:
            return i + 1, cid
    injected = sum(1 for c in executed_nb.cells[:executed_index]
                   if {"injected-parameters", "papermill-error-cell-tag"} & set(c.get("metadata", {}).get("tags") or []))
    return executed_index - injected + 1, cid


def signal_of(returncode: int | None, sandbox: Any | None = None) -> int | None:
    """The signal that killed the runner, from its exit status (None when it exited by itself): a negative
    status, or bubblewrap's 128 + N for a sandboxed runner killed by signal N."""
    if not isinstance(returncode, int):
        return None
    if returncode < 0:
        return -returncode
    if getattr(sandbox, "isolation", None) == "bwrap" and returncode > 128:
        return returncode - 128
    return None


_NOT_RUN = ("pending", "running", "failed")


def unfinished_cells(executed: Any | None, source_nb: Any) -> str:
    """"" when the executed notebook shows every cell of the source run to its end; else what it shows instead
    (read from papermill's record in each cell, the one account the runner writes last)."""
    if executed is None:
        return "cannot be read"
    cells = [c for c in executed.get("cells", []) if "injected-parameters" not in (c.get("metadata", {}).get("tags") or [])]
    states = [c.get("metadata", {}).get("papermill", {}).get("status") for c in cells]
    left = [i + 1 for i, st in enumerate(states) if st in _NOT_RUN or st is None]
    if left:
        return f"shows cell {left[0]} not run to its end"
    n_code = sum(1 for c in source_nb.get("cells", []) if c.get("cell_type") == "code")
    if sum(1 for c in cells if c.get("cell_type") == "code") < n_code:
        return "has fewer code cells than the notebook that was run"
    return ""


def _interpret(result: RunResult, child: dict[str, Any], report: Any, *, timeout: float | None,
               sandbox: Any | None, source_nb: Any) -> None:
    executed = None
    if result.output_notebook.is_file() and not result.output_notebook.is_symlink():
        try:
            executed = read_notebook(result.output_notebook, follow_links=False)
        except LabkitError:
            executed = None
    idx = None
    if executed is not None:
        # papermill marks the failed (or, when killed from outside, the running) cell in its metadata;
        # its own cell_index does not count the error banners it inserts
        for i, c in enumerate(executed.cells):
            if c.get("metadata", {}).get("papermill", {}).get("status") in ("running", "failed"):
                idx = i
    result.cell, result.cell_id = _source_cell(source_nb, idx, executed)
    if result.cell is None and child.get("cell_id"):
        for i, src in enumerate(source_nb.cells):
            if src.get("id") == child["cell_id"]:
                result.cell, result.cell_id = i + 1, child["cell_id"]
    result.output_truncated = bool(child.get("output_truncated"))
    where = f"cell {result.cell}" + (f" (id {result.cell_id})" if result.cell_id else "") if result.cell else "a cell"
    path = result.output_notebook
    lim = getattr(sandbox, "limits", None)
    if report.killed == "timeout":
        result.status = "timeout"
        result.message = f"timed out after {timeout:g} s while running {where}; partial notebook: {path}"
    elif report.killed == "memory":
        result.status = "memory"
        result.message = f"killed for memory: the run used more than {lim.memory_mb} MB while running {where}; partial notebook: {path}"
    elif report.killed == "processes":
        result.status = "processes"
        result.message = f"killed: more than {lim.max_processes} processes (fork storm?) while running {where}; partial notebook: {path}"
    elif signal_of(getattr(report, "returncode", None), sandbox) not in (None, 25):  # 25, SIGXFSZ: below
        result.status = "crashed"  # a runner killed by a signal did not finish, whatever anything says
        why = getattr(report, "stderr_tail", "")
        result.message = (f"the notebook runner was killed (signal {signal_of(report.returncode, sandbox)}) while "
                          f"running {where}" + (f" ({why})" if why else "") + f"; partial notebook: {path}")
    elif child.get("status") == "ok" and getattr(report, "returncode", 0) in (0, None):
        missing = unfinished_cells(executed, source_nb)
        if missing:
            result.status = "crashed"
            result.message = (f"the runner reported success, but the executed notebook {missing}; partial "
                              f"notebook: {path}")
        else:
            result.status = "ok"
            result.message = f"ran in {result.seconds:.1f} s: {path}"
    elif child.get("status") in ("error", "cell_timeout", "kernel_died"):
        ename, evalue = child.get("ename") or "Error", (child.get("evalue") or "").strip()
        result.exception = f"{ename}: {evalue}"[:300] if evalue else ename
        if ename == "MemoryError":
            result.status = "memory"
            limit = f" (limit {lim.memory_mb} MB)" if lim else ""
            result.message = f"killed for memory{limit}: MemoryError in {where}; partial notebook: {path}"
        elif child["status"] == "kernel_died":
            result.status = "kernel_died"
            result.message = f"the kernel died while running {where} ({result.exception}); partial notebook: {path}"
        elif child["status"] == "cell_timeout":
            result.status = "cell_timeout"
            result.message = f"{where} ran longer than the per-cell timeout; partial notebook: {path}"
        else:
            result.status = "error"
            result.message = f"{where} failed with {result.exception}; partial notebook: {path}"
    else:
        rc = getattr(report, "returncode", None)
        result.status = "crashed"
        sig = f"signal {-rc}" if isinstance(rc, int) and rc < 0 else f"exit status {rc}"
        if isinstance(rc, int) and rc in (-25, 153):  # SIGXFSZ: a file grew past RLIMIT_FSIZE
            result.status = "output_limit"
            result.message = f"a file grew past the {lim.file_size_mb if lim else '?'} MB limit while running {where}; partial notebook: {path}"
        else:
            why = getattr(report, "stderr_tail", "")
            result.message = (f"the notebook runner stopped ({sig}) while running {where}"
                              + (f" ({why})" if why else "") + f"; partial notebook: {path}")


# ---------------------------------------------------------------- child side

def _engine_with_output_cap(max_bytes: int | None) -> str:
    """Register a papermill engine whose client keeps at most ``max_bytes`` of outputs; returns its name."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    class CappedClient(PapermillNotebookClient):
        used = 0
        truncated = False
        current_id: str | None = None   # the cell running now (named in the status if the kernel dies)

        def execute_cell(self, cell, cell_index, *args, **kwargs):  # noqa: D401 - nbclient hook
            CappedClient.current_id = cell.get("id")
            return super().execute_cell(cell, cell_index, *args, **kwargs)

        def output(self, outs, msg, display_id, cell_index):  # noqa: D401 - nbclient hook
            if max_bytes is None:
                return super().output(outs, msg, display_id, cell_index)
            content = msg.get("content", {})
            size = len(json.dumps(content, default=str))
            if CappedClient.used + size > max_bytes:
                if not CappedClient.truncated:
                    CappedClient.truncated = True
                    import nbformat
                    outs.append(nbformat.v4.new_output(
                        "stream", name="stderr",
                        text=f"[labkit: output truncated: more than {max_bytes / 2**20:g} MB of output]\n"))
                return None
            CappedClient.used += size
            return super().output(outs, msg, display_id, cell_index)

    class CappedEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None, **kwargs):
            from papermill.log import logger
            from papermill.utils import merge_kwargs, remove_args

            kwargs = remove_args(["input_path"], **kwargs)
            safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
            final = merge_kwargs(safe_kwargs, timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
                                 startup_timeout=start_timeout, kernel_name=kernel_name, log=logger,
                                 log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file)
            return CappedClient(nb_man, **final).execute()

    papermill_engines.register("labkit-capped", CappedEngine)
    _engine_with_output_cap.client = CappedClient  # type: ignore[attr-defined]
    return "labkit-capped"


def skip_slow_optional_imports() -> None:
    """Make jsonschema skip its optional ``rfc3987_syntax`` checker in this process.

    nbformat validates notebooks with jsonschema, which imports rfc3987_syntax (when
    installed) only to check "iri" string formats, which notebooks never use; that
    import builds a grammar and costs ~1.6 s of every papermill/grader process start.
    jsonschema treats the module as optional (ImportError is suppressed)."""
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


def _child_main(spec_path: str) -> int:
    """Run one papermill execution described by a JSON spec; write a status JSON. Never raises."""
    skip_slow_optional_imports()
    spec = json.loads(Path(spec_path).read_text())
    token, status_fd = _runner_channel(spec.get("status_fd"))
    status: dict[str, Any] = {"status": "crashed"}
    try:
        import papermill
        from papermill.exceptions import PapermillExecutionError

        engine = _engine_with_output_cap(spec.get("max_output_bytes"))
        try:
            papermill.execute_notebook(
                spec["input"], spec["output"], parameters=spec["parameters"], kernel_name=spec["kernel_name"],
                execution_timeout=spec["cell_timeout"], cwd=spec["cwd"], progress_bar=False,
                log_output=spec.get("log_output", False), engine_name=engine, request_save_on_cell_execute=True,
                start_timeout=120, shutdown_kernel="immediate")
            status = {"status": "ok"}
        except PapermillExecutionError as err:
            status = {"status": "error", "cell_index": err.cell_index, "exec_count": err.exec_count,
                      "ename": err.ename, "evalue": str(err.evalue)[:1000]}
        except BaseException as err:  # nbclient: CellTimeoutError, DeadKernelError, ...
            name = type(err).__name__
            kind = "cell_timeout" if "Timeout" in name else "kernel_died" if "DeadKernel" in name else "error"
            status = {"status": kind, "ename": name, "evalue": str(err).splitlines()[0][:500] if str(err) else ""}
        client = getattr(_engine_with_output_cap, "client", None)
        status["output_truncated"] = bool(client and client.truncated)
        if status["status"] != "ok" and client is not None:
            status["cell_id"] = client.current_id
    finally:
        if status_fd is not None:
            try:
                os.write(status_fd, (json.dumps({**status, "token": token}) + "\n").encode())
                os.close(status_fd)
            except OSError:
                pass
    return 0 if status.get("status") == "ok" else 1


def _runner_channel(status_fd: Any) -> tuple[str, int | None]:
    """The runner's side of :class:`StatusPipe`: read the token from stdin (then point stdin at /dev/null), keep
    the pipe out of the kernel, and make this process's memory and open files unreadable to the kernel's user
    (``PR_SET_DUMPABLE`` 0: /proc/<runner>/mem, /environ, /fd/ need privileges then)."""
    token = ""
    try:
        token = sys.stdin.buffer.readline(256).decode(errors="replace").strip()
    except (OSError, ValueError, AttributeError):
        pass
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    except OSError:
        pass
    if not isinstance(status_fd, int):
        return token, None
    try:
        os.set_inheritable(status_fd, False)
    except OSError:
        return token, None
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    except (OSError, AttributeError):
        pass
    return token, status_fd


# ---------------------------------------------------------------- summary

def headline(lab: str, results: dict[str, Any]) -> dict[str, Any]:
    """A few headline numbers of a lab's recorded results (for the run summary table): the registry's
    pick for the lab, else its first three numbers."""
    entry = labs.find(lab)
    out = entry.headline(results) if entry is not None and entry.headline is not None else {}
    if not out:
        scalars = {k: v for k, v in results.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        out.update(dict(list(scalars.items())[:3]))
    return out


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - child entry point
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "--child":
        return _child_main(args[1])
    print("labkit.run is a library; use `labkit run` (this entry point is the internal child runner).", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
