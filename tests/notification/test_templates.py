"""Templates: the ten built-ins render for every channel; variables are data; errors name them."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import meta
from jinja2.exceptions import SecurityError
from slack_sdk.models.blocks import Block

from mcp_server.capabilities.notification import templates
from mcp_server.capabilities.notification.templates import BUILTIN, render
from tests.helpers import call, call_error
from tests.notification.conftest import Setup
from tests.notification.servers import discord_problems, teams_problems

CONTRACT = {
    "training_started",
    "training_completed",
    "training_failed",
    "evaluation_passed",
    "evaluation_failed",
    "model_registered",
    "model_promoted",
    "model_rolled_back",
    "pipeline_completed",
    "pipeline_failed",
}


def sample_variables(template: templates.Template, everything: bool = True) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for var in template.variables:
        if not (var.required or everything):
            continue
        if var.mapping:
            values[var.name] = {"accuracy": 0.91, "f1": 0.87}
        elif var.name == "url":
            values[var.name] = "https://ci.example.com/runs/1"
        elif var.name == "passed":
            values[var.name] = True
        elif "version" in var.name or var.name == "duration_seconds":
            values[var.name] = 3
        else:
            values[var.name] = f"{var.name}-value"
    return values


def test_builtins_cover_the_contract() -> None:
    assert {t.name for t in BUILTIN} >= CONTRACT


@pytest.mark.parametrize("template", BUILTIN, ids=lambda t: t.name)
def test_declared_variables_cover_the_template_source(template: templates.Template) -> None:
    used: set[str] = set()
    for source in (template.subject, template.text):
        used |= meta.find_undeclared_variables(templates._ENV.parse(source))
    declared = {v.name for v in template.variables}
    assert used <= declared
    required_in_subject = meta.find_undeclared_variables(templates._ENV.parse(template.subject))
    assert required_in_subject <= {v.name for v in template.variables if v.required}  # never undefined


@pytest.mark.parametrize("everything", [True, False], ids=["all-variables", "required-only"])
async def test_every_builtin_renders_for_every_channel(setup: Setup, everything: bool) -> None:
    for template in BUILTIN:
        out = await call(
            setup.router,
            "render_notification_template",
            template_name=template.name,
            variables=sample_variables(template, everything),
        )
        assert out["subject"] and out["text"].strip() and "<html>" in out["html"], template.name
        for block in out["slack_blocks"]:
            Block.parse(block).validate_json()  # raises on anything Slack would refuse
        assert out["slack_blocks"][0]["type"] == "header"
        assert out["teams_card"]["version"] == "1.4"
        assert (
            teams_problems(
                {
                    "type": "message",
                    "attachments": [
                        {"contentType": "application/vnd.microsoft.card.adaptive", "content": out["teams_card"]}
                    ],
                }
            )
            == []
        )
        assert discord_problems({"embeds": [out["discord_embed"]]}) == []
        assert out["discord_embed"]["title"] == out["subject"]
    assert setup.hooks.requests == [] and setup.smtp.mails == []  # a preview sends nothing


async def test_render_for_one_channel_returns_only_its_format(setup: Setup) -> None:
    variables = sample_variables(templates.get_template("model_registered"))
    out = await call(
        setup.router,
        "render_notification_template",
        template_name="model_registered",
        variables=variables,
        channel="teams",
    )
    assert out["teams_card"] and out["slack_blocks"] is None and out["html"] is None and out["discord_embed"] is None
    assert out["subject"] == "Model registered: model_name-value v3"


async def test_missing_variable_is_an_error_naming_it(setup: Setup) -> None:
    text = await call_error(
        setup.router,
        "render_notification_template",
        template_name="training_failed",
        variables={"model_name": "m", "algorithm": "rf"},
    )
    assert text.startswith("variables:") and "'error'" in text and "training_failed" in text


async def test_unknown_variable_is_refused_listing_the_accepted_ones(setup: Setup) -> None:
    text = await call_error(
        setup.router,
        "render_notification_template",
        template_name="pipeline_failed",
        variables={"run_id": "r", "stage": "s", "error": "e", "colour": "red"},
    )
    assert "'colour'" in text and "run_id, stage, error, url" in text


async def test_unknown_template_is_not_found_with_the_choices(setup: Setup) -> None:
    text = await call_error(setup.router, "render_notification_template", template_name="nope", variables={})
    assert text.startswith("template_name:") and "training_started" in text


async def test_mapping_variable_must_be_an_object(setup: Setup) -> None:
    variables = {"model_name": "m", "metrics": "accuracy=0.9"}
    text = await call_error(
        setup.router, "render_notification_template", template_name="evaluation_passed", variables=variables
    )
    assert text.startswith("variables.metrics:")


@pytest.mark.parametrize(
    "payload",
    ["{{ 7*7 }}", "{% for x in range(3) %}loop{% endfor %}", "{{ ''.__class__.__mro__ }}", "{{ config }}"],
)
def test_template_injection_variable_values_stay_literal(payload: str) -> None:
    message = render("pipeline_failed", {"run_id": payload, "stage": "train", "error": payload})
    assert payload in message.subject and message.text == f"Pipeline run {payload} failed at stage train: {payload}"
    assert "49" not in message.text and "looploop" not in message.text


async def test_template_injection_through_a_send_tool_stays_literal(setup: Setup) -> None:
    await call(
        setup.router,
        "send_slack_notification",
        template="model_rolled_back",
        variables={"model_name": "{{ 7*7 }}", "from_version": 2, "to_version": 1, "reason": "{% raw %}x"},
    )
    payload = setup.hooks.received("/services/")[0].json
    assert payload["blocks"][0]["text"]["text"] == "Model rolled back: {{ 7*7 }} v2 -> v1"
    assert "{% raw %}x" in payload["blocks"][1]["text"]["text"]


def test_sandbox_refuses_unsafe_attribute_access_in_template_source() -> None:
    with pytest.raises(SecurityError):
        templates._ENV.from_string("{{ ''.__class__.__mro__[1].__subclasses__() }}").render()


async def test_list_templates_reports_variables_and_whether_required(setup: Setup) -> None:
    out = await call(setup.router, "list_notification_templates")
    by_name = {t["name"]: t for t in out["templates"]}
    assert set(by_name) >= CONTRACT
    variables = {v["name"]: v["required"] for v in by_name["model_promoted"]["variables"]}
    assert variables == {"model_name": True, "version": True, "status": True, "previous_version": False, "url": False}
    assert all(t["description"] for t in out["templates"])


def test_numbers_and_booleans_render_consistently() -> None:
    message = render("pipeline_completed", {"run_id": "r1", "passed": False, "duration_seconds": 12.3456789})
    assert message.text == "Pipeline run r1 completed and did not pass its thresholds."
    assert ("Seconds", "12.35") in message.facts


def test_large_numbers_are_not_written_in_exponent_form() -> None:
    assert templates.format_value(86400.0) == "86400" and templates.format_value(0.000123) == "0.000123"
    assert templates.format_value({"rmse": 41.23456}) == "rmse: 41.23"
