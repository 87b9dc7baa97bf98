"""parse_issue_config: find the training config in an issue body and validate it.

The body is untrusted text: YAML goes through `yaml.safe_load` only, aliases (the "billion laughs"
expansion) are refused before anything is built, and bodies over GitHub's own size limit are
refused. Every problem is reported with the field it concerns, not just the first.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from mcp_server.capabilities.base import ToolContext, ToolOutput
from mcp_server.capabilities.github_integration.schemas import (
    MAX_BODY,
    ConfigProblem,
    ParseIssueConfigInput,
    ParseIssueConfigOutput,
    TrainingConfig,
)
from mcp_server.common.exceptions import InvalidInputError, MLOpsError

_FENCE = re.compile(
    r"^(?P<fence>```|~~~)[ \t]*(?P<lang>[A-Za-z0-9_+-]*)[^\n]*\n(?P<text>.*?)^(?P=fence)[ \t]*$", re.M | re.S
)
_HEADING = re.compile(r"^###[ \t]+(?P<title>.+?)[ \t]*#*[ \t]*$", re.M)
_CHECKBOX = re.compile(r"^[-*][ \t]+\[(?P<mark>[ xX])\][ \t]+(?P<item>.+)$")
_LIST_FIELDS = {"algorithms", "notify", "email_to"}
_MAP_FIELDS = {"hyperparameters", "thresholds"}
_WORD_FIELDS = {"algorithm", "algorithms", "task_type", "notify"}  # dropdown values such as "Random Forest"
_NO_RESPONSE = "_No response_"  # what GitHub writes for an empty issue-form field


def _key(text: str) -> str:
    """Heading/field names compare without case, spaces, underscores or hyphens."""
    return re.sub(r"[\s_-]+", "", text.lower())


_FIELD_BY_KEY = {_key(name): name for name in TrainingConfig.model_fields}


@dataclass
class ParsedConfig:
    valid: bool
    config: TrainingConfig | None
    errors: list[ConfigProblem] = field(default_factory=list)
    source: str | None = None

    def config_json(self) -> dict[str, Any] | None:
        return self.config.model_dump(mode="json") if self.config else None


def _safe_yaml(text: str) -> Any:
    """yaml.safe_load, refusing aliases (exponential expansion) before anything is constructed."""
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise ValueError("YAML aliases (*name) are not accepted")
    return yaml.safe_load(text)


def _load_block(lang: str, text: str) -> Any:
    if lang == "json":
        return json.loads(text)
    return _safe_yaml(text)


def _fenced(body: str) -> tuple[str, Any] | None:
    """The first yaml/json block (or an unlabelled block that holds an algorithm), parsed."""
    blocks = [(m.group("lang").lower(), m.group("text")) for m in _FENCE.finditer(body)]
    labelled = [(lang, text) for lang, text in blocks if lang in ("yaml", "yml", "json")]
    if labelled:
        lang, text = labelled[0]
        return ("json" if lang == "json" else "yaml"), _load_block(lang, text)
    for _, text in blocks:
        try:
            value = _safe_yaml(text)
        except (yaml.YAMLError, ValueError):
            continue
        if isinstance(value, dict) and ({"algorithm", "algorithms"} & set(map(str, value))):
            return "yaml", value
    return None


def _form_value(name: str, text: str) -> Any:
    text = text.strip()
    fenced = _FENCE.search(text + "\n")
    if fenced:
        text = fenced.group("text").strip()
    if name in _MAP_FIELDS:
        return _safe_yaml(text)
    if name in _LIST_FIELDS:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        boxes = [_CHECKBOX.match(line) for line in lines]
        if lines and all(boxes):
            items = [b.group("item").strip() for b in boxes if b and b.group("mark") in "xX"]
        else:
            items = [part.strip().lstrip("-* ").strip() for part in re.split(r"[,\n]", text)]
        values: Any = [item for item in items if item]
    else:
        values = text.strip("`").strip()
    if name in _WORD_FIELDS:
        values = [_word(v) for v in values] if isinstance(values, list) else _word(values)
    return values


def _word(value: str) -> str:
    """A dropdown choice as a name: "Random Forest" -> random_forest."""
    return re.sub(r"[\s-]+", "_", value.strip().lower())


def _issue_form(body: str) -> dict[str, Any] | None:
    """`### Heading` sections (GitHub issue forms) whose headings name config fields."""
    headings = list(_HEADING.finditer(body))
    found: dict[str, Any] = {}
    for i, match in enumerate(headings):
        name = _FIELD_BY_KEY.get(_key(match.group("title")))
        end = headings[i + 1].start() if i + 1 < len(headings) else len(body)
        text = body[match.end() : end].strip()
        if name is None or not text or text == _NO_RESPONSE:
            continue
        try:
            found[name] = _form_value(name, text)
        except (yaml.YAMLError, ValueError) as exc:
            raise ValueError(f"section '### {match.group('title')}': {exc}") from None
    return found or None


def _problems(error: ValidationError) -> list[ConfigProblem]:
    out = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item.get("loc", ()))
        ctx = item.get("ctx") or {}
        if item.get("type") == "config_missing":
            for name in str(ctx.get("fields", "")).split(", "):
                out.append(ConfigProblem(field=name, message=f"required for {ctx.get('family')} training"))
            continue
        if not loc:
            loc = str(item.get("type", "config")) if item.get("type") in ("algorithm", "algorithms") else "config"
        message = item.get("msg", "invalid value")
        if item.get("type") == "extra_forbidden":
            message = "unknown field; accepted: " + ", ".join(TrainingConfig.model_fields)
        out.append(ConfigProblem(field=loc, message=message))
    return out


def parse_body(ctx: ToolContext, body: str) -> ParsedConfig:
    """Find, parse and validate the training config of an issue body (shared with the webhook)."""
    if len(body) > MAX_BODY:
        raise InvalidInputError(f"the body is {len(body)} characters; at most {MAX_BODY} are read", field="body")
    try:
        # Issue-form sections first: a form's textarea may itself be a fenced block (hyperparameters).
        form = _issue_form(body)
        found = ("issue_form", form) if form is not None else _fenced(body)
        source, raw = found if found else (None, None)
    except (yaml.YAMLError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        problem = ConfigProblem(field="body", message=f"cannot parse the config: {str(exc)[:300]}")
        return ParsedConfig(False, None, [problem])
    if raw is None:
        return ParsedConfig(
            False,
            None,
            [ConfigProblem(field="body", message="no training config found: add a ```yaml block or ### sections")],
        )
    if not isinstance(raw, dict):
        return ParsedConfig(False, None, [ConfigProblem(field="body", message="the config block is not a mapping")])
    try:
        config = TrainingConfig.model_validate(raw)
    except ValidationError as exc:
        return ParsedConfig(False, None, _problems(exc), source)
    if config.dataset_s3_uri:
        try:
            ctx.storage.resolve(config.dataset_s3_uri, "dataset_s3_uri")
        except MLOpsError as exc:
            return ParsedConfig(False, None, [ConfigProblem(field="dataset_s3_uri", message=exc.message)], source)
    return ParsedConfig(True, config, [], source)


def parse_issue_config(ctx: ToolContext, params: ParseIssueConfigInput) -> ToolOutput:
    body = params.body
    if body is None:
        from mcp_server.capabilities.github_integration.tools.issue_management import fetch_issue

        assert params.repository is not None and params.issue_number is not None
        body = fetch_issue(ctx, params.repository, params.issue_number).body or ""
    parsed = parse_body(ctx, body)
    data = ParseIssueConfigOutput(
        valid=parsed.valid,
        config=parsed.config_json(),
        errors=parsed.errors,
        source=parsed.source,  # type: ignore[arg-type]
        repository=params.repository,
        issue_number=params.issue_number,
    )
    where = f"{params.repository}#{params.issue_number}" if params.repository else "the body"
    if parsed.valid and parsed.config:
        summary = f"Valid training config in {where}: {', '.join(parsed.config.algorithms or [])}"
    else:
        summary = f"No valid training config in {where}: {len(parsed.errors)} problem(s)"
    return ToolOutput(data=data, summary=summary + " (from untrusted issue text)")
