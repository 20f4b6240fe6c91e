"""The training report: ``<model>.report.md`` and ``.report.json``, and the confusion matrix of
the exported model on the validation clips as ``<model>.confusion.png``."""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import VidclsError
from ..writers import dumps, write_text
from .evaluation import plot_confusion
from .trainer import TrainResult

log = logging.getLogger("vidcls")


def write_report(result: TrainResult) -> Path:
    """Write the report files beside the model; returns the Markdown one."""
    base = result.model_path.with_suffix("")
    png = None
    if result.val_accuracy_exported is not None and result.evaluation is not None:
        try:
            png = plot_confusion(
                result.evaluation,
                base.with_name(base.name + ".confusion.png"),
                title=f"validation, exported model: top-1 {result.val_accuracy_exported:.1%}",
            )
        except VidclsError as e:  # no matplotlib: the table in the report still has it
            log.warning("%s", e)
    report = base.with_name(base.name + ".report.md")
    write_text(report, report_text(result, png))
    write_text(report.with_suffix(".json"), dumps(result.to_dict(), indent=2) + "\n")
    return report


def report_text(result: TrainResult, png: Path | None = None) -> str:
    """The Markdown report (``png``: the confusion matrix picture, if drawn)."""
    options = result.options
    fps = "every frame" if result.fps is None else f"{result.fps:g} fps"
    lines = [
        f"# {result.model_path.name}",
        "",
        f"Trained by vidcls on `{result.data_dir}` from `{options.model}` in "
        f"{result.seconds:.0f} s (feature extraction {result.extraction_seconds:.0f} s); "
        f"clips fed {fps}.",
        "",
        "| class | train clips | validation clips |",
        "| --- | --- | --- |",
        *[f"| {c} | {n['train']} | {n['val']} |" for c, n in result.counts.items()],
        "",
        f"- training accuracy (clips without augmentation): {result.train_accuracy:.1%}",
    ]
    if result.cv_accuracy is not None:
        lines += [
            f"- cross-validated accuracy (contiguous folds of the training clips; what to "
            f"expect on new clips like these): {result.cv_accuracy:.1%}"
        ]
    if result.val_accuracy is not None:
        lines += [
            f"- validation accuracy, head in numpy: {result.val_accuracy:.1%}",
            f"- validation accuracy, exported .tflite: {result.val_accuracy_exported:.1%}",
            f"- largest probability difference, exported vs numpy: "
            f"{result.max_probability_difference:.4f}",
            f"- for scale, logistic regression on pooled features without augmentation: "
            f"{result.baseline_val_accuracy:.1%}",
        ]
    lines += int8_lines(result)
    lines += [
        f"- {options.views - 1} augmented views per training clip; L2 {result.l2:g}; "
        f"pictures fitted by {options.fit}"
    ]
    if result.skipped:
        lines += ["", "Skipped clips:", *[f"- {s}" for s in result.skipped]]
    if result.val_accuracy_exported is not None and result.evaluation is not None:
        lines += ["", "Validation, exported model:", "", "```", result.evaluation.table(), "```"]
    elif result.cv_confusion:
        lines += ["", "Cross-validation (each clip predicted by a fit without its fold):", ""]
        lines += ["```", matrix_table(result.classes, result.cv_confusion), "```"]
    if png is not None:
        lines += ["", f"![confusion matrix]({png.name})"]
    return "\n".join(lines) + "\n"


def int8_lines(result: TrainResult) -> list[str]:
    """The int8 guard's lines of the report (none without a check)."""
    c = result.int8
    if c is None:
        return []
    lines = [
        f"- int8 check on {c.clips} {c.part} clips: the exported model agrees with the float "
        f"head on {c.agreement:.1%}; top-1 {c.int8_accuracy:.1%} int8 vs {c.float_accuracy:.1%} "
        f"float; largest probability difference {c.max_difference:.4f}"
    ]
    warning = c.warning()
    return lines + ([f"- **warning**: {warning}"] if warning else [])


def matrix_table(classes: list[str], m: list[list[int]]) -> str:
    """A confusion matrix as text, with each class's recall."""
    w = max(len(c) for c in [*classes, "recall"]) + 2
    lines = ["rows: true, columns: predicted", " " * w + "".join(f"{c[:9]:>10}" for c in classes)]
    for name, row in zip(classes, m, strict=True):
        recall = row[classes.index(name)] / max(1, sum(row))
        lines.append(f"{name:<{w}}" + "".join(f"{v:>10}" for v in row) + f"   recall {recall:.0%}")
    return "\n".join(lines)
