"""Built-in notification templates and their rendering into one channel-neutral `Message`.

Templates are Jinja2 in a `SandboxedEnvironment` with `StrictUndefined`: a template can only
format the variables it is given. Variables are data: they are values in the render context,
never template source, so a value of `{{ 7*7 }}` comes out literally. Channel formats (Slack
blocks, Teams card, Discord embeds, email HTML) are built from the `Message` in `formats.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from jinja2 import StrictUndefined, TemplateError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from mcp_server.common.exceptions import InvalidInputError, NotFoundError

Status = Literal["info", "success", "warning", "failure"]
MAX_VALUE_CHARS = 4000


@dataclass(frozen=True)
class Variable:
    name: str
    required: bool
    description: str
    mapping: bool = False  # a {name: value} object (e.g. metrics), shown as one fact per entry


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    status: Status
    subject: str  # Jinja: one line, the email subject and the card title
    text: str  # Jinja: the message body
    variables: tuple[Variable, ...]
    # (label, variable): shown when the variable is given; a mapping gives one fact per key,
    # labelled by the key (after "label: " when the label is not empty)
    facts: tuple[tuple[str, str], ...] = ()

    def variable(self, name: str) -> Variable | None:
        return next((v for v in self.variables if v.name == name), None)


@dataclass(frozen=True)
class Message:
    """What every channel sends: a title, a plain-text body, labelled facts and a link."""

    subject: str
    text: str
    title: str | None = None
    facts: tuple[tuple[str, str], ...] = ()
    url: str | None = None
    status: Status = "info"
    template: str | None = None


def _v(name: str, description: str, required: bool = False, mapping: bool = False) -> Variable:
    return Variable(name, required, description, mapping)


MODEL = _v("model_name", "the model's name", required=True)
ALGORITHM = _v("algorithm", "e.g. random_forest, xgboost", required=True)
JOB_ID = _v("job_id", "the training job id")
URL = _v("url", "a link to more detail (https)")
METRICS = _v("metrics", "metric name -> value", mapping=True)
MODEL_URI = _v("model_s3_uri", "the model bundle")
DATASET_URI = _v("dataset_s3_uri", "the training data")
DURATION = _v("duration_seconds", "how long it took")
VERSION = _v("version", "the registry version", required=True)
ERROR = _v("error", "what went wrong", required=True)
THRESHOLDS = _v("thresholds", "metric name -> threshold", mapping=True)

BUILTIN: tuple[Template, ...] = (
    Template(
        "training_started",
        "A training job has started.",
        "info",
        "Training started: {{ model_name }}",
        "{{ algorithm }} training of {{ model_name }} has started"
        "{% if job_id is defined %} as job {{ job_id }}{% endif %}.",
        (MODEL, ALGORITHM, DATASET_URI, JOB_ID, URL),
        (("Dataset", "dataset_s3_uri"), ("Job", "job_id")),
    ),
    Template(
        "training_completed",
        "A training job finished; lists its metrics.",
        "success",
        "Training completed: {{ model_name }}",
        "{{ algorithm }} training of {{ model_name }} completed"
        "{% if duration_seconds is defined %} in {{ duration_seconds }} s{% endif %}.",
        (MODEL, ALGORITHM, METRICS, MODEL_URI, DURATION, JOB_ID, URL),
        (("Model", "model_s3_uri"), ("Job", "job_id"), ("", "metrics")),
    ),
    Template(
        "training_failed",
        "A training job failed; says why.",
        "failure",
        "Training failed: {{ model_name }}",
        "{{ algorithm }} training of {{ model_name }} failed: {{ error }}",
        (MODEL, ALGORITHM, ERROR, JOB_ID, URL),
        (("Job", "job_id"),),
    ),
    Template(
        "evaluation_passed",
        "A model met its evaluation thresholds.",
        "success",
        "Evaluation passed: {{ model_name }}",
        "{{ model_name }} passed its evaluation"
        "{% if thresholds is defined %} against {{ thresholds | length }} threshold(s){% endif %}.",
        (MODEL, _v("metrics", "metric name -> value", required=True, mapping=True), THRESHOLDS, MODEL_URI, URL),
        (("Model", "model_s3_uri"), ("", "metrics"), ("Thresholds", "thresholds")),
    ),
    Template(
        "evaluation_failed",
        "A model missed its evaluation thresholds.",
        "warning",
        "Evaluation failed: {{ model_name }}",
        "{{ model_name }} did not pass its evaluation"
        "{% if failed_metrics is defined %}: {{ failed_metrics }} below threshold{% endif %}.",
        (
            MODEL,
            _v("metrics", "metric name -> value", required=True, mapping=True),
            THRESHOLDS,
            _v("failed_metrics", "the metrics that missed, e.g. 'accuracy, f1'"),
            MODEL_URI,
            URL,
        ),
        (("Model", "model_s3_uri"), ("", "metrics"), ("Thresholds", "thresholds")),
    ),
    Template(
        "model_registered",
        "A model version was registered.",
        "info",
        "Model registered: {{ model_name }} v{{ version }}",
        "{{ model_name }} version {{ version }} was registered.",
        (MODEL, VERSION, MODEL_URI, METRICS, URL),
        (("Model", "model_s3_uri"), ("", "metrics")),
    ),
    Template(
        "model_promoted",
        "A model version moved to a new status (e.g. production).",
        "success",
        "Model promoted: {{ model_name }} v{{ version }} to {{ status }}",
        "{{ model_name }} version {{ version }} is now {{ status }}"
        "{% if previous_version is defined %} (replacing version {{ previous_version }}){% endif %}.",
        (
            MODEL,
            VERSION,
            _v("status", "the new status, e.g. production", required=True),
            _v("previous_version", "the version it replaced"),
            URL,
        ),
    ),
    Template(
        "model_rolled_back",
        "Production was rolled back to an earlier version.",
        "warning",
        "Model rolled back: {{ model_name }} v{{ from_version }} -> v{{ to_version }}",
        "{{ model_name }} was rolled back from version {{ from_version }} to version {{ to_version }}"
        "{% if reason is defined %}: {{ reason }}{% else %}.{% endif %}",
        (
            MODEL,
            _v("from_version", "the version taken out of production", required=True),
            _v("to_version", "the version now in production", required=True),
            _v("reason", "why"),
            URL,
        ),
    ),
    Template(
        "pipeline_completed",
        "A pipeline run completed.",
        "success",
        "Pipeline completed: {{ run_id }}",
        "Pipeline run {{ run_id }} completed"
        "{% if passed is defined %} and {% if passed %}passed{% else %}did not pass{% endif %}"
        " its thresholds{% endif %}.",
        (
            _v("run_id", "the pipeline run id", required=True),
            _v("passed", "whether the best model passed its thresholds"),
            _v("best_model_s3_uri", "the best model bundle"),
            _v("model_name", "the registered model"),
            _v("version", "the registered version"),
            METRICS,
            DURATION,
            URL,
        ),
        (
            ("Best model", "best_model_s3_uri"),
            ("Model", "model_name"),
            ("Version", "version"),
            ("Seconds", "duration_seconds"),
            ("", "metrics"),
        ),
    ),
    Template(
        "pipeline_failed",
        "A pipeline run failed; names the stage.",
        "failure",
        "Pipeline failed: {{ run_id }} at {{ stage }}",
        "Pipeline run {{ run_id }} failed at stage {{ stage }}: {{ error }}",
        (
            _v("run_id", "the pipeline run id", required=True),
            _v("stage", "the stage that failed", required=True),
            ERROR,
            URL,
        ),
    ),
)
_BY_NAME = {t.name: t for t in BUILTIN}


def get_template(name: str, field_name: str = "template") -> Template:
    template = _BY_NAME.get(name)
    if template is None:
        raise NotFoundError(
            f"no template named {name!r}",
            field=field_name,
            hint=f"use one of {', '.join(_BY_NAME)} (list_notification_templates describes them)",
        )
    return template


def format_value(value: Any) -> str:
    """How a variable's value is shown: numbers compactly, booleans as yes/no, objects as pairs."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"  # 0.9346, 12.35, 86400
    if isinstance(value, dict):
        return ", ".join(f"{k}: {format_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def _finalize(value: Any) -> Any:
    # Applied to every {{ expression }}: numbers and booleans print as they do in the facts.
    return value if isinstance(value, str) else format_value(value)


_ENV = SandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, finalize=_finalize, keep_trailing_newline=False
)


def _check_variables(template: Template, variables: dict[str, Any]) -> None:
    unknown = sorted(set(variables) - {v.name for v in template.variables})
    if unknown:
        raise InvalidInputError(
            f"template {template.name} has no variable {', '.join(repr(u) for u in unknown)}",
            field="variables",
            hint=f"its variables are {', '.join(v.name for v in template.variables)}",
        )
    missing = [v.name for v in template.variables if v.required and variables.get(v.name) is None]
    if missing:
        raise InvalidInputError(
            f"missing required variable {', '.join(repr(m) for m in missing)} for template {template.name}",
            field="variables",
            hint=f"give {', '.join(missing)} in variables",
        )
    for var in template.variables:
        value = variables.get(var.name)
        if value is None:
            continue
        if var.mapping:
            if not isinstance(value, dict) or any(isinstance(v, dict | list) for v in value.values()):
                raise InvalidInputError("must be an object of names to numbers or text", field=f"variables.{var.name}")
        elif isinstance(value, dict | list):
            raise InvalidInputError("must be text, a number or a boolean", field=f"variables.{var.name}")
        if len(format_value(value)) > MAX_VALUE_CHARS:
            raise InvalidInputError(f"is longer than {MAX_VALUE_CHARS} characters", field=f"variables.{var.name}")


def _render(source: str, context: dict[str, Any], template: Template) -> str:
    try:
        return _ENV.from_string(source).render(context)
    except UndefinedError as exc:  # a template using a variable nobody gave (StrictUndefined)
        raise InvalidInputError(
            f"template {template.name} needs a variable that was not given ({exc.message})", field="variables"
        ) from None
    except TemplateError as exc:
        raise InvalidInputError(f"template {template.name} could not be rendered ({exc})", field="variables") from None


def render(name: str, variables: dict[str, Any] | None, field_name: str = "template") -> Message:
    """The built-in template `name` rendered with `variables` (checked first: unknown or missing
    variables are errors that name them)."""
    template = get_template(name, field_name)
    given = {k: v for k, v in (variables or {}).items() if v is not None}
    _check_variables(template, given)
    subject = " ".join(_render(template.subject, given, template).split())
    text = _render(template.text, given, template).strip()
    facts: list[tuple[str, str]] = []
    for label, var_name in template.facts:
        value = given.get(var_name)
        if isinstance(value, dict):
            facts.extend((f"{label}: {k}" if label else str(k), format_value(v)) for k, v in value.items())
        elif value is not None:
            facts.append((label, format_value(value)))
    url = given.get("url")
    link = str(url) if isinstance(url, str) and url.startswith(("https://", "http://")) else None
    return Message(
        subject=subject, text=text, title=subject, facts=tuple(facts), url=link, status=template.status, template=name
    )


def plain_message(message: str, title: str | None = None) -> Message:
    """A message without a template: its first line (or the title) is the subject."""
    first = message.strip().splitlines()[0] if message.strip() else "Notification"
    subject = " ".join((title or first).split())[:150]
    return Message(subject=subject, text=message.strip(), title=title)
