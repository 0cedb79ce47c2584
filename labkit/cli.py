"""The ``labkit`` command line: fixtures | run | grade | release | report | similarity | export | bench."""
from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from pathlib import Path

from labkit import labs
from labkit.config import DEFAULT_PROFILE, PROFILE_NAMES, LabkitError, repo_root


def _cmd_fixtures(args: argparse.Namespace) -> int:
    if args.course_shaped:
        return _course_shaped(Path(args.course_shaped), force=args.force)
    from labkit import fixtures

    if args.rebuild:
        out = Path(args.out) if args.out else None
        manifest = fixtures.rebuild(out, steps=args.steps)
        print(f"original model pre-trained into {out or fixtures.shipped_dir()} in {manifest['build_seconds']} s "
              f"({manifest['policy']['steps']} steps, final loss {manifest['policy']['final_loss']}); "
              + ("commit data/original-model to ship it" if out is None else "not the shipped copy"))
        return 0
    if args.steps is not None or args.out:
        raise LabkitError("--steps and --out belong to --rebuild: 'labkit fixtures --rebuild --steps 20 --out DIR'.")
    manifest = fixtures.build(force=args.force)
    print(f"fixtures ready in {fixtures.fixture_dir()} (original model recipe {manifest['recipe_version']}, "
          f"policy {manifest['policy']['parameters']:,} params, classifier accuracy "
          f"{manifest['classifier']['test_accuracy']:.3f}; installed from {manifest['installed_from']}, "
          f"hashes checked, in {manifest['install_seconds']} s)")
    return 0


def _course_shaped(directory: Path, *, force: bool) -> int:
    from labkit import standin
    from labkit.config import MODELS_ENV

    manifest = standin.build(directory, force=force)
    parts = manifest["parts"]
    print(f"course-shaped stand-in ready in {directory.resolve()} ({standin.NOTE}):")
    for name, part in parts.items():
        print(f"  {name}: {part['of']}, {part['parameters']:,} parameters"
              + (f", tokenizer of {part['tokenizer_size']:,} tokens" if "tokenizer_size" in part else ""))
    print(f"use it with: {MODELS_ENV}={directory.resolve()} papermill labs/<lab>.ipynb out.ipynb -p profile course "
          "-p dataset <DialogSum folder or .jsonl> (sizes turned down on a CPU)")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    bench_dir = repo_root() / "bench"
    available = sorted(p for p in bench_dir.glob("*.py") if not p.name.startswith("_"))  # _tiny.py: a helper
    scripts = available if not args.names else [bench_dir / f"{n.removesuffix('.py')}.py" for n in args.names]
    missing = [s for s in scripts if not s.is_file()]
    if missing:
        raise LabkitError(f"No benchmark {', '.join(m.stem for m in missing)}; available: "
                          f"{', '.join(p.stem for p in available)}.")
    status = 0
    for script in scripts:
        print(f"== {script.stem}", flush=True)
        status |= subprocess.call([sys.executable, str(script)])
    return status


def _cmd_release(args: argparse.Namespace) -> int:
    from labkit import release

    labs = [lab for lab in args.labs if lab != "all"] or None
    for path in release.release(labs, args.out, labs_dir=args.labs_dir):
        print(path)
    print()
    print(release.hidden_data_note(labs))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import pandas as pd

    from labkit import run as runmod
    from labkit import run_params

    labs = run_params.resolve_labs(args.labs)
    params = run_params.parse_assignments(args.param)
    rows, status, graded = [], 0, []
    for lab, nb in labs:
        if not nb.is_file():
            print(f"{lab}: missing: {nb} does not exist yet (not run)")
            rows.append({"lab": lab, "status": "missing", "seconds": None})
            status = 1
            continue
        res = runmod.execute(nb, args.out, params, profile=args.profile, cell_timeout=args.cell_timeout,
                             timeout=args.timeout, from_cli=True, log_output=args.verbose)
        print(f"{lab}: {res.status}: {res.message}", flush=True)
        rows.append({"lab": lab, "status": res.status, "seconds": res.seconds, **runmod.headline(lab, res.results)})
        status |= 0 if res.ok else 1
        if args.grade:
            from labkit import grading
            rec = grading.grade_run(res, parameters=params, profile=args.profile)
            graded.append(rec)
            grading.write_submission_files(rec, Path(args.out) / lab / "grade")
    print()
    print(pd.DataFrame(rows).to_string(index=False))
    if graded:
        print()
        print("grades (default rubrics, executed notebooks graded in place, not re-executed):")
        from labkit.grading import format_table
        print(format_table(graded))
        for rec in graded:
            print(f"  feedback: {Path(args.out) / rec['id'] / 'grade' / 'feedback.md'}")
    return status


def _cmd_grade(args: argparse.Namespace) -> int:
    # grading never writes bytecode: the tamper check fingerprints labkit/ (its __pycache__ included)
    sys.dont_write_bytecode = True
    from labkit import grading
    from labkit.run_params import parse_assignments
    from labkit.sandbox import Limits

    if args.manual:
        return _merge_manual(args)
    limits = Limits(memory_mb=args.memory_mb, output_mb=args.output_mb, max_processes=args.max_processes)
    from labkit.integrity import TamperedError

    try:
        records = grading.grade_batch(args.submissions, args.lab, args.out, rubric=args.rubric, timeout=args.timeout,
                                      workers=args.workers, scheduler=args.scheduler, force=args.force,
                                      parameters=parse_assignments(args.param), profile=args.profile,
                                      isolation=args.isolation, limits=limits, hidden_seed=args.hidden_seed)
    except TamperedError as err:  # the batch stopped: show what was graded, then the reason, loudly
        print(grading.format_table(err.records))
        print(f"\nlabkit: {err}", file=sys.stderr)
        return 3
    print(grading.format_table(records))
    iso = sorted({r.get("isolation", "").split(":")[0] for r in records if r.get("isolation")})
    print(f"\n{len(records)} submissions graded into {args.out} (grades.csv, summary.md); isolation: {', '.join(iso) or '-'}")
    from labkit.grading.summary import hidden_data_line
    hidden = hidden_data_line(records)
    if hidden:
        print(hidden)
    pending = sum(r.get("pending") or 0 for r in records)
    if pending:
        print(f"{pending:g} points of hand-graded answers are pending: fill in {Path(args.out) / 'manual.csv'}, then "
              f"labkit grade {args.submissions} --lab {args.lab} --out {args.out} --manual SHEET")
    return 0


def _merge_manual(args: argparse.Namespace) -> int:
    from labkit import grading

    if args.force:
        raise LabkitError("--manual merges a TA's sheet into existing grades and runs no notebook, so --force has "
                          "nothing to regrade: drop --force (regrade first without --manual if you must).")
    records, changed = grading.merge_manual(args.out, args.manual, lab=args.lab, submissions=args.submissions)
    print(grading.format_table(records))
    pending = sum(r.get("pending") or 0 for r in records)
    print(f"\nmerged {changed} hand-graded answer(s) from {args.manual} into {args.out} (grades.csv, feedback.md, "
          f"results.json, summary.md); no notebook was run." + (f" {pending:g} points still pending." if pending else ""))
    return 0


def _cmd_grade_labs(args: argparse.Namespace) -> int:
    from labkit import grading
    from labkit.run_params import resolve_labs

    graded, status = [], 0
    for lab, _nb in resolve_labs(args.labs):
        res = grading.executed_lab(args.out, lab)
        if res.status == "missing":
            print(f"{lab}: missing: {res.message}")
            status = 1
            continue
        rec = grading.grade_run(res, profile=args.profile)
        grading.write_submission_files(rec, Path(args.out) / lab / "grade")
        graded.append(rec)
        status |= 0 if rec["score"] + (rec.get("pending") or 0) == rec["max"] else 1  # pending: a person's to give
    if graded:
        print(grading.format_table(graded))
    return status


def _cmd_report(args: argparse.Namespace) -> int:
    from labkit import grading

    out = Path(args.grades)
    records = grading.read_records(out)
    grading.write_class_reports(records, out)
    print(grading.format_table(records))
    print(f"\nclass summary: {out / 'summary.md'}")
    return 0


def _cmd_similarity(args: argparse.Namespace) -> int:
    from labkit.grading.similarity import similarity
    from labkit.grading.similarity_report import NOTICE

    res = similarity(args.submissions, args.lab, args.out, scheduler=args.scheduler, top=args.top)
    for p in res["pairs"][:min(10, args.top)]:
        print(f"{p['score']:.3f}  {p['a']}  {p['b']}  ({p['matched'] or '-'})")
    skipped = [w for w in res["works"] if w.problem]
    for w in skipped:
        print(f"not compared: {w.id}: {w.problem}")
    print(f"\n{len(res['works']) - len(skipped)} submissions, {len(res['pairs'])} pairs in {res['seconds']:g} s: "
          f"{res['csv']}, {res['html']}\n{NOTICE}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from labkit.grading.export import export_grades

    res = export_grades(args.grades, args.format, args.out, roster=args.roster, assignment=args.assignment)
    warn = []
    if res.unmatched:
        warn.append(f"{len(res.unmatched)} graded submission(s) without a roster row, not exported: "
                    + ", ".join(res.unmatched))
    warn += [f"ambiguous: {a}" for a in res.ambiguous]
    if res.not_graded:
        warn.append("no grade (regrade them), exported empty: " + "; ".join(res.not_graded))
    if res.pending:
        warn.append("hand-graded points pending, not counted (merge the TA's sheet with labkit grade ... --manual "
                    "SHEET to count them): " + "; ".join(res.pending))
    warn += res.notes
    for line in warn:
        print(f"labkit export: {line}", file=sys.stderr)
    empty = f", {len(res.no_submission)} roster student(s) without a submission left empty" if res.no_submission else ""
    print(f"{res.rows} rows written to {res.path} ({args.format}{empty})")
    return 1 if args.strict and (res.unmatched or res.ambiguous) else 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and --help)."""
    parser = argparse.ArgumentParser(prog="labkit", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("fixtures", help="install the shipped offline models (seconds), pre-train them again "
                                        "(--rebuild), or build the course-shaped stand-in")
    p.add_argument("--force", action="store_true", help="install again even when the installed copy is current")
    p.add_argument("--rebuild", action="store_true",
                   help="pre-train the original model and classifier again from data/ into data/original-model "
                        "(deterministic on one machine; tens of minutes), to be committed")
    p.add_argument("--steps", type=int, default=None, help="with --rebuild: pre-training steps (default: the recipe's)")
    p.add_argument("--out", default=None, metavar="DIR", help="with --rebuild: write here instead of data/original-model")
    p.add_argument("--course-shaped", metavar="DIR", default=None,
                   help="instead: write random-weight models of the course's shapes (flan-t5-base, the RoBERTa "
                        "reward model, the Lab 2 adapter) into DIR/<hub id>/, for LABKIT_MODELS=DIR: a stand-in "
                        "for shapes and memory only (~1.5 GB, about a minute)")
    p.set_defaults(func=_cmd_fixtures)

    p = sub.add_parser("bench", help="run benchmarks in bench/ (all, or the named ones)")
    p.add_argument("names", nargs="*")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("release", help="write the student editions (solutions stubbed, outputs cleared)")
    p.add_argument("labs", nargs="*", metavar="LAB", help=f"{' '.join(labs.ids())} (default: all)")
    p.add_argument("--out", default="outputs/release", help="folder for the student notebooks (default: %(default)s)")
    p.add_argument("--labs-dir", default=None, help="folder of the source (instructor) labs (default: the repo's labs/)")
    p.set_defaults(func=_cmd_release)

    from labkit.run import CELL_TIMEOUT_S
    p = sub.add_parser("run", help="execute labs headlessly with papermill (and optionally grade them)")
    p.add_argument("labs", nargs="*", default=["all"], metavar="LAB",
                   help=f"{' '.join(labs.ids())}, all, or a .ipynb path (default: all)")
    p.add_argument("--profile", default=DEFAULT_PROFILE, help=f"{' | '.join(PROFILE_NAMES)} (default: %(default)s)")
    p.add_argument("-p", "--param", action="append", metavar="KEY=VALUE", help="a parameter of the notebooks' parameters cell")
    p.add_argument("--out", default="outputs", help="output folder: OUT/<lab>/ (default: %(default)s)")
    p.add_argument("--cell-timeout", type=float, default=CELL_TIMEOUT_S, help="seconds per cell (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per lab (default: none)")
    p.add_argument("--grade", action="store_true", help="grade the executed labs with the default rubrics (no re-execution)")
    p.set_defaults(func=_cmd_run)

    from labkit.grading.worker import GRADE_TIMEOUT_S
    from labkit.sandbox import ISOLATIONS
    p = sub.add_parser("grade", help="grade a folder of submitted notebooks in a sandbox")
    p.add_argument("submissions", help="folder of .ipynb files, or of folders holding one each")
    p.add_argument("--lab", required=True, choices=labs.ids())
    p.add_argument("--out", required=True, help="grades folder (grades.csv, summary.md, <id>/feedback.md ...)")
    p.add_argument("--rubric", default=None, help="rubric YAML (default: the lab's default rubric)")
    p.add_argument("--timeout", type=float, default=GRADE_TIMEOUT_S,
                   help="wall-clock seconds per submission (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2,
                   help="submissions graded at once locally, at most one per usable CPU (default: %(default)s)")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT", help="grade on a Dask cluster instead")
    p.add_argument("--force", action="store_true", help="regrade submissions that already have a grade")
    p.add_argument("-p", "--param", action="append", metavar="KEY=VALUE", help="override a lab parameter for graded runs")
    p.add_argument("--profile", default=DEFAULT_PROFILE)
    p.add_argument("--isolation", default="auto", choices=list(ISOLATIONS),
                   help="auto/bwrap: bubblewrap, refusing to grade without it (default: auto); rlimits: accept the "
                        "risk of grading without bubblewrap (see the README's table)")
    p.add_argument("--memory-mb", type=int, default=4096, help="memory limit per submission (default: %(default)s)")
    p.add_argument("--output-mb", type=float, default=8, help="notebook output kept per submission (default: %(default)s)")
    p.add_argument("--max-processes", type=int, default=32, help="processes per submission (default: %(default)s)")
    p.add_argument("--hidden-seed", type=int, default=None, metavar="N",
                   help="seed of the dialogues the re-run checks generate (default: the seed of the grades already "
                        "in --out, else a fresh one; recorded in each grade.json and summary.md)")
    p.add_argument("--manual", default=None, metavar="SHEET",
                   help="merge a filled-in manual.csv (hand-graded points and comments) into the grades in --out, "
                        "without running any notebook")
    p.set_defaults(func=_cmd_grade)

    p = sub.add_parser("grade-labs", help="grade labs already executed by `labkit run` (default rubrics, no re-execution)")
    p.add_argument("labs", nargs="*", default=["all"], metavar="LAB")
    p.add_argument("--out", default="outputs", help="the --out folder of `labkit run` (default: %(default)s)")
    p.add_argument("--profile", default=DEFAULT_PROFILE)
    p.set_defaults(func=_cmd_grade_labs)

    p = sub.add_parser("report", help="rebuild grades.csv and the class summary of a grades folder")
    p.add_argument("grades", help="the --out folder of `labkit grade`")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("similarity", help="pairs of submissions that share work (code and hand-graded text): a "
                                          "list for a person to read, never a penalty")
    p.add_argument("submissions", help="folder of .ipynb files, or of folders holding one each")
    p.add_argument("--lab", required=True, choices=labs.ids())
    p.add_argument("--out", required=True, metavar="DIR", help="writes DIR/similarity.csv and DIR/similarity.html")
    p.add_argument("--top", type=int, default=20, help="pairs shown side by side in the HTML (default: %(default)s)")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT", help="fingerprint on a Dask cluster")
    p.set_defaults(func=_cmd_similarity)

    from labkit.grading.export import FORMATS
    p = sub.add_parser("export", help="write grades as the CSV an LMS imports (Canvas, Moodle, plain)")
    p.add_argument("grades", help="the --out folder of `labkit grade` (one lab)")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--roster", default=None, help="canvas: Canvas's gradebook export (Grades → Export), the roster")
    p.add_argument("--assignment", default=None, help="canvas: the column to fill, e.g. \"Lab 1 (101)\"; "
                                                      "moodle: the grade column's name")
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when a graded submission has no roster row (or an ambiguous one)")
    p.set_defaults(func=_cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``labkit`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        return int(args.func(args) or 0)
    except LabkitError as err:
        print(f"labkit: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("labkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
