"""The runner's child process, from inside: papermill with an engine that caps the outputs it keeps, and the
status it reports to the parent on its own pipe (see :class:`labkit.run_child.StatusPipe`).

Started by :func:`labkit.run.execute` as ``python -m labkit.run_engine --child SPEC`` (SPEC: a JSON file of
what to run), inside the grader's sandbox when there is one.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


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


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - child entry point
    """``--child SPEC``: run one execution; anything else is refused (this module is not a command)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "--child":
        return _child_main(args[1])
    print("labkit.run_engine is the internal child runner; use `labkit run`.", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
