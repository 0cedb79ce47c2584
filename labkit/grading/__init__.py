"""Grading submitted notebooks: discovery, the grader process, the batch driver, the reports.

``grade_batch`` (:mod:`.driver`) finds the submissions (:mod:`.discover`: a
notebook, or a folder holding one) and grades each in its own grader process
(``python -m labkit.grading.worker --one SPEC``) on a local thread pool or a
Dask cluster (same function either way). A grader process (:mod:`.worker`)
copies the submission's folder to a scratch folder, executes it there with
:func:`labkit.run.execute` inside a :class:`labkit.sandbox.Sandbox`, runs the
rubric's checks against the recorded results *and* the artifacts (outside the
sandbox: the rubric and hidden data never enter the scratch folder), and
writes per submission ``<id>/feedback.md``, ``<id>/results.json`` (Gradescope
format), ``<id>/grade.json`` and the executed notebook. The batch then writes
``grades.csv``, ``summary.md``, ``check_pass_rates.csv`` and
``score_histogram.png`` (:mod:`.reports`).

:func:`grade_run` grades a lab this process already executed (``labkit run
--grade``; trusted, no sandbox). Both paths derive a submission's status with
the one function :func:`~labkit.grading.worker.status_of`.

Every submission ends with a score and, when something went wrong, a stated
reason; one bad notebook never stops the batch, and a crash of a grader
process is itself reported as a reason.
"""
from __future__ import annotations

from labkit.grading.discover import Submission, discover, executed_lab
from labkit.grading.driver import grade_batch, grade_submission
from labkit.grading.reports import (
    CSV_COLUMNS, GRADE_FILE, feedback_markdown, format_table, read_records, write_class_reports,
    write_submission_files,
)
from labkit.grading.worker import GradeOptions, grade_one, grade_run, run_checks, status_of

__all__ = [
    "CSV_COLUMNS", "GRADE_FILE", "GradeOptions", "Submission", "discover", "executed_lab", "feedback_markdown",
    "format_table", "grade_batch", "grade_one", "grade_run", "grade_submission", "read_records", "run_checks",
    "status_of", "write_class_reports", "write_submission_files",
]
