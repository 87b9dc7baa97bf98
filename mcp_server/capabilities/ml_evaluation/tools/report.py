"""generate_report: an HTML (self-contained) or Markdown report of a model and its evaluation.

The report is first built as a neutral document (sections of text, tables and images), then
rendered: HTML embeds every image as a base64 data URI and escapes every piece of text, so it
loads nothing from anywhere; Markdown links PNG files written beside it.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from typing import Any

from mcp_server.capabilities.base import HANDLE_ONLY, Artifact, ToolContext, ToolOutput
from mcp_server.capabilities.ml_evaluation import engine as ev
from mcp_server.capabilities.ml_evaluation import plots
from mcp_server.capabilities.ml_evaluation.jobs import run_evaluation
from mcp_server.capabilities.ml_evaluation.schemas import GenerateReportInput, GenerateReportOutput
from mcp_server.capabilities.ml_evaluation.tools.visualize import render_plot
from mcp_server.common import bundles
from mcp_server.common.bundles import Bundle, now_iso
from mcp_server.common.exceptions import InvalidInputError, MLOpsError, NotFoundError
from mcp_server.common.jobs import Job
from mcp_server.common.metrics import HIGHER_IS_BETTER
from mcp_server.common.s3_utils import Location

_PLOTS = {
    ev.CLASSIFICATION: ("confusion_matrix", "roc_curve", "pr_curve", "feature_importance", "learning_curve"),
    ev.REGRESSION: ("residuals", "feature_importance", "learning_curve"),
    ev.CLUSTERING: ("clusters",),
}
_OTHER_PLOTS = ("feature_importance", "learning_curve", "reward_curve")


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Any]]


@dataclass
class Image:
    name: str
    png: bytes


Block = str | Table | Image


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}" if 1e-3 <= abs(value) < 1e5 or value == 0 else f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, sort_keys=True)
    return str(value)


# ---------------------------------------------------------------------------- gathering
@dataclass
class _Source:
    bundle: Bundle
    result: dict[str, Any] | None  # evaluation result (saved or computed now)
    predictions: ev.Predictions | None
    warnings: list[str]


def _gather(ctx: ToolContext, params: GenerateReportInput) -> _Source:
    warnings: list[str] = []
    record = None
    if params.evaluation_s3_uri:
        record = ev.read_evaluation(ctx.storage, params.evaluation_s3_uri)
        model_uri = str(record["model_s3_uri"])
        if params.model_s3_uri and bundles.bundle_location(ctx.storage, params.model_s3_uri).uri != model_uri:
            raise InvalidInputError(
                f"the evaluation is of {model_uri}, not of {params.model_s3_uri}",
                field="model_s3_uri",
                hint="Leave model_s3_uri out when passing evaluation_s3_uri.",
            )
    else:
        assert params.model_s3_uri is not None  # the input model requires one of the two
        model_uri = params.model_s3_uri
    bundle = bundles.read_bundle(ctx.storage, model_uri, "model_s3_uri")
    task = bundle.task_type
    test_uri = params.test_data_s3_uri or (record or {}).get("test_data_s3_uri")
    if params.thresholds:
        if record is None and not test_uri:
            raise InvalidInputError(
                "thresholds are checked against test metrics", field="thresholds", hint="Pass test_data_s3_uri too."
            )
        ev.check_metric_names(task, list(params.thresholds), "thresholds", params.label_column)
    predictions = None
    if test_uri:
        if task not in ev.EVALUATION_TOOLS:
            raise InvalidInputError(f"{task} models are not evaluated on test data", field="test_data_s3_uri")
        target = params.target_column or (record or {}).get("target_column")
        labels = params.label_column or (record or {}).get("label_column")
        try:
            _, frame = ev.read_test_data(ctx.storage, test_uri)
        except NotFoundError:
            if record is None:
                raise
            warnings.append(f"the test data {test_uri} is gone: plots that need predictions are left out")
        else:
            predictions = ev.predict_on(bundle, frame, target, labels)
    result = record
    if result is None and predictions is not None:
        result = {**ev.evaluate(predictions), "test_data_s3_uri": test_uri, "target_column": predictions.target_column}
    if result is not None and params.thresholds:
        result = dict(result, thresholds=params.thresholds)
        result["passed"], result["failed_metrics"] = ev.check_thresholds(result["metrics"], params.thresholds)
    return _Source(bundle, result, predictions, warnings)


def _plots(source: _Source) -> list[Image]:
    bundle, result = source.bundle, source.result
    images = []
    for plot_type in _PLOTS.get(bundle.task_type, _OTHER_PLOTS):
        try:
            if plot_type == "confusion_matrix" and source.predictions is None and result:
                png = plots.confusion_matrix_png(result["confusion_matrix"], result["labels"])
            else:
                png = render_plot(plot_type, bundle, source.predictions)
        except MLOpsError:
            continue  # a plot that does not apply (no history, no probabilities, no test data) is left out
        images.append(Image(plot_type, png))
    return images


def _sections(source: _Source, images: list[Image]) -> list[Section]:
    bundle, result = source.bundle, source.result
    meta = bundle.metadata
    model = Section(
        "Model",
        [
            Table(
                ["property", "value"],
                [
                    ["model", bundle.uri],
                    ["algorithm", meta.get("algorithm")],
                    ["task type", meta.get("task_type")],
                    ["format", f"{bundle.family} ({meta.get('model_file')})"],
                    ["features", len(bundle.feature_names)],
                    ["target", meta.get("target_column")],
                    ["classes", meta.get("classes")],
                    ["hyperparameters", meta.get("hyperparameters") or {}],
                ],
            )
        ],
    )
    sections = [model]
    if result is not None and result.get("passed") is not None:
        failed = {f["metric"] for f in result.get("failed_metrics") or []}
        rows = []
        for name, limit in (result.get("thresholds") or {}).items():
            higher = HIGHER_IS_BETTER.get(name, True)
            value = result["metrics"].get(name)
            rows.append(
                [name, value, f"{'>=' if higher else '<='} {_fmt(limit)}", "FAIL" if name in failed else "pass"]
            )
        verdict = "PASSED: every threshold is met." if result["passed"] else f"FAILED: {', '.join(sorted(failed))}."
        sections.append(
            Section("Thresholds verdict", [verdict, Table(["metric", "value", "threshold", "result"], rows)])
        )
    if result is not None:
        sections.append(_metrics_section(result))
        sections += _task_sections(result)
    training = {k: v for k, v in (meta.get("metrics") or {}).items() if v not in ({}, None)}
    if training:
        splits = [k for k, v in training.items() if isinstance(v, dict)]
        if splits:
            names = sorted({n for s in splits for n in training[s]})
            rows = [[n, *(training[s].get(n) for s in splits)] for n in names]
            sections.append(Section("Training metrics", [Table(["metric", *splits], rows)]))
        else:
            sections.append(
                Section("Training metrics", [Table(["metric", "value"], [[k, v] for k, v in training.items()])])
            )
    if images:
        sections.append(Section("Plots", list(images)))
    lineage = [
        ["training data", meta.get("training_data_uri")],
        ["data fingerprint", meta.get("data_fingerprint")],
        ["created at", meta.get("created_at")],
        *[[f"version: {k}", v] for k, v in (meta.get("library_versions") or {}).items()],
        *[[f"sha256: {k}", v] for k, v in bundle.artifacts.items()],
    ]
    sections.append(Section("Lineage", [Table(["item", "value"], lineage)]))
    warnings = [*source.warnings, *((result or {}).get("warnings") or [])]
    if warnings:
        sections.append(Section("Warnings", [Table(["warning"], [[w] for w in warnings])]))
    return sections


def _metrics_section(result: dict[str, Any]) -> Section:
    blocks: list[Block] = []
    facts = [
        ("test data", result.get("test_data_s3_uri")),
        ("rows", result.get("n_samples")),
        ("evaluation", result.get("evaluation_s3_uri")),
        ("evaluated at", result.get("created_at")),
    ]
    blocks.append(Table(["item", "value"], [[k, v] for k, v in facts if v is not None]))
    blocks.append(Table(["metric", "value"], [[k, v] for k, v in result["metrics"].items()]))
    return Section("Test metrics", blocks)


def _task_sections(result: dict[str, Any]) -> list[Section]:
    out = []
    if result.get("per_class"):
        rows = [[c["label"], c["precision"], c["recall"], c["f1"], c["support"]] for c in result["per_class"]]
        out.append(Section("Per-class report", [Table(["class", "precision", "recall", "f1", "support"], rows)]))
    if result.get("confusion_matrix"):
        labels = [str(v) for v in result["labels"]]
        rows = [[label, *counts] for label, counts in zip(labels, result["confusion_matrix"], strict=True)]
        text = "Rows are true labels, columns predicted labels."
        out.append(Section("Confusion matrix", [text, Table(["true \\ predicted", *labels], rows)]))
    if result.get("residuals"):
        rows = [[k, v] for k, v in result["residuals"].items()]
        out.append(Section("Residuals", [Table(["statistic", "value"], rows)]))
    if "n_clusters" in result:
        rows = [["clusters", result["n_clusters"]], ["noise points", result["n_noise"]]]
        rows += [[f"size of cluster {k}", v] for k, v in (result.get("cluster_sizes") or {}).items()]
        out.append(Section("Clusters", [Table(["item", "value"], rows)]))
    return out


# ---------------------------------------------------------------------------- rendering
_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0 1em}td,th{border:1px solid #ccc;padding:4px 8px;"
    "text-align:left;vertical-align:top;word-break:break-word}th{background:#f0f0f0}"
    "img{max-width:100%;display:block;margin:0.5em 0 1.5em}.meta{color:#666}"
)


def render_html(title: str, subtitle: str, sections: list[Section]) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f'<h1>{e(title)}</h1><p class="meta">{e(subtitle)}</p>',
    ]
    for section in sections:
        parts.append(f"<h2>{e(section.title)}</h2>")
        for block in section.blocks:
            if isinstance(block, str):
                parts.append(f"<p>{e(block)}</p>")
            elif isinstance(block, Table):
                head = "".join(f"<th>{e(h)}</th>" for h in block.headers)
                body = "".join("<tr>" + "".join(f"<td>{e(_fmt(c))}</td>" for c in row) + "</tr>" for row in block.rows)
                parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            else:
                data = base64.b64encode(block.png).decode()
                parts.append(f'<h3>{e(block.name)}</h3><img alt="{e(block.name)}" src="data:image/png;base64,{data}">')
    parts.append("</body></html>")
    return "\n".join(parts)


def _md(text: Any) -> str:
    """Table-cell safe Markdown text: no raw HTML, pipes or line breaks."""
    value = _fmt(text) if not isinstance(text, str) else text
    return html.escape(value, quote=False).replace("|", "\\|").replace("\n", " ").replace("`", "\\`")


def render_markdown(title: str, subtitle: str, sections: list[Section], image_files: dict[str, str]) -> str:
    lines = [f"# {_md(title)}", "", f"_{_md(subtitle)}_", ""]
    for section in sections:
        lines += [f"## {_md(section.title)}", ""]
        for block in section.blocks:
            if isinstance(block, str):
                lines += [_md(block), ""]
            elif isinstance(block, Table):
                lines.append("| " + " | ".join(_md(h) for h in block.headers) + " |")
                lines.append("|" + "---|" * len(block.headers))
                lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in block.rows]
                lines.append("")
            else:
                lines += [f"### {_md(block.name)}", "", f"![{_md(block.name)}]({image_files[block.name]})", ""]
    return "\n".join(lines)


_STEPS = 4  # gather (bundle, evaluation, predictions), plots, write, done


def _check(ctx: ToolContext, params: GenerateReportInput) -> Location:
    """What fails at once: the output place, a missing bundle or evaluation, missing test data."""
    dest = ctx.storage.resolve_output(params.output_s3_uri, "output_s3_uri")
    if params.evaluation_s3_uri:
        ev.read_evaluation(ctx.storage, params.evaluation_s3_uri)
    if params.model_s3_uri:
        bundles.read_metadata(ctx.storage, params.model_s3_uri, "model_s3_uri")
    if params.test_data_s3_uri:
        ctx.storage.resolve_existing(params.test_data_s3_uri, "test_data_s3_uri")
    return dest


def _work(job: Job, ctx: ToolContext, params: GenerateReportInput, dest: Location) -> dict[str, Any]:
    fmt = params.format or ("markdown" if dest.suffix in (".md", ".markdown") else "html")
    job.report(0, _STEPS, "reading the model and evaluating")
    source = _gather(ctx, params)
    job.check_cancelled()
    job.report(1, _STEPS, "drawing the plots")
    images = _plots(source)
    sections = _sections(source, images)
    meta = source.bundle.metadata
    title = params.title or f"Model report: {meta.get('algorithm')} ({meta.get('task_type')})"
    subtitle = f"{source.bundle.uri} - generated {now_iso()}"
    image_uris: list[str] = []
    files: dict[str, str] = {}
    if fmt == "html":
        document = render_html(title, subtitle, sections)
    else:
        stem = dest.name.rsplit(".", 1)[0]
        files = {image.name: f"{stem}-{image.name}.png" for image in images}
        document = render_markdown(title, subtitle, sections, files)
    image_locs = [ctx.storage.sibling(dest, files[image.name]) for image in images if files]
    for loc in image_locs:  # every place checked before anything is written
        ctx.storage.check_output(loc, "output_s3_uri", "data")
    job.report(2, _STEPS, "writing the report")
    job.begin_publish()  # a cancel after this point is too late: the report is written
    for image, loc in zip(images, image_locs, strict=False):  # the images first: no link to a missing file
        ctx.storage.write_bytes(loc, image.png, "image/png")
        image_uris.append(loc.uri)
    payload = document.encode()
    digest = ctx.storage.write_bytes(dest, payload, "text/html" if fmt == "html" else "text/markdown")
    job.report(_STEPS, _STEPS, "done")
    data = GenerateReportOutput(
        job_id=job.job_id,
        status="succeeded",
        report_s3_uri=dest.uri,
        format=fmt,
        model_s3_uri=source.bundle.uri,
        sections=[s.title for s in sections],
        plots=[i.name for i in images],
        image_s3_uris=image_uris,
        passed=(source.result or {}).get("passed"),
        bytes=len(payload),
        sha256=digest,
    )
    return data.model_dump(mode="json", exclude=set(HANDLE_ONLY))


def _artifacts(result: dict[str, Any]) -> list[Artifact]:
    uri = str(result["report_s3_uri"])
    mime = "text/html" if result["format"] == "html" else "text/markdown"
    links = [Artifact(uri=uri, name=uri.rsplit("/", 1)[-1], mime_type=mime)]
    return links + [Artifact(uri=u, name=u.rsplit("/", 1)[-1], mime_type="image/png") for u in result["image_s3_uris"]]


def _summary(result: dict[str, Any]) -> str:
    return f"{result['format']} report with {len(result['plots'])} plot(s) at {result['report_s3_uri']}"


async def generate_report(ctx: ToolContext, params: GenerateReportInput) -> ToolOutput:
    return await run_evaluation(
        ctx,
        "generate_report",
        params,
        GenerateReportOutput,
        lambda: _check(ctx, params),
        lambda job, dest: _work(job, ctx, params, dest),
        _summary,
        {"model_s3_uri": params.model_s3_uri, "evaluation_s3_uri": params.evaluation_s3_uri},
        artifacts=_artifacts,
    )
