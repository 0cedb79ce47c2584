"""Grading submitted notebooks: discovery, the grader process, the batch driver, the reports.

``grade_batch`` (:mod:`.driver`) finds the submissions (:mod:`.discover`: a
notebook, or a folder holding one) and grades each in its own grader process
(``python -m labkit.grading.worker --one SPEC``) on a local thread pool or a
Dask cluster (same function either way). A grader process (:mod:`.worker`)
copies the submission's folder to a scratch folder, executes it there with
:func:`labkit.run.execute` inside a :class:`labkit.sandbox.Sandbox`, runs the
rubric's checks against the recorded results *and* the artifacts (outside the
sandbox: the rubric and hidden data never enter the scratch folder), and
writes per submission (:mod:`.reports`) ``<folder>/feedback.md``, ``<folder>/results.json``
(Gradescope format), ``<folder>/grade.json`` and the executed notebook (the
folder is the filesystem-safe form of the id; the id itself, the submission's
name exactly, is what every table shows). The batch then writes
``grades.csv``, ``check_pass_rates.csv``, ``score_histogram.png``,
``summary.md``/``summary.html`` (what needs a person, the most frequent
failures: :mod:`.summary`), the TA's sheet ``manual.csv`` (:mod:`.manual`,
merged back with ``--manual``: :mod:`.merge`) and ``gradebook.csv`` in the
grades root (:mod:`.gradebook`), all through :mod:`.class_reports`.

:func:`grade_run` grades a lab this process already executed (``labkit run
--grade``; trusted, no sandbox). Both paths derive a submission's status with
the one function :func:`~labkit.grading.worker.status_of`.

Every submission ends with a score and, when something went wrong, a stated
reason; one bad notebook never stops the batch, and a crash of a grader
process is itself reported as a reason.
"""
from __future__ import annotations

from labkit.grading.class_reports import write_class_reports
from labkit.grading.discover import Submission, discover, executed_lab, safe_name
from labkit.grading.driver import grade_batch, grade_submission
from labkit.grading.gradebook import write_gradebook
from labkit.grading.merge import merge as merge_manual
from labkit.grading.reports import (
    CSV_COLUMNS, GRADE_FILE, feedback_markdown, format_table, read_records, write_submission_files,
)
from labkit.grading.worker import GradeOptions, grade_one, grade_run, run_checks, status_of

__all__ = [
    "CSV_COLUMNS", "GRADE_FILE", "GradeOptions", "Submission", "discover", "executed_lab", "feedback_markdown",
    "format_table", "grade_batch", "grade_one", "grade_run", "grade_submission", "merge_manual", "read_records",
    "run_checks", "safe_name", "status_of", "write_class_reports", "write_gradebook", "write_submission_files",
]
