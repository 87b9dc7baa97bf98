"""One `Message`, four channel formats, each inside its service's limits.

- Slack: Block Kit blocks built with slack-sdk's models (header, section, fields, a link button);
  user text is escaped (`&`, `<`, `>`) so a value cannot ping `<!channel>` or forge a link.
- Teams: an Adaptive Card 1.4 (Workflows webhooks refuse newer versions).
- Discord: embeds within Discord's limits; a long message is split over several embeds and
  messages, and truncated past `DISCORD_MAX_MESSAGES`, never refused.
- Email: subject, plain text and HTML (Jinja2 with autoescape).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from mcp_server.capabilities.notification.templates import Message

_ICON = {"info": "ℹ️", "success": "✅", "warning": "⚠️", "failure": "❌"}  # noqa: RUF001 - emoji are the point
_TEAMS_COLOR = {"info": "Accent", "success": "Good", "warning": "Warning", "failure": "Attention"}
_DISCORD_COLOR = {"info": 0x3498DB, "success": 0x2ECC71, "warning": 0xF1C40F, "failure": 0xE74C3C}
ELLIPSIS = "…"
TRUNCATED = f"\n{ELLIPSIS} (truncated)"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + ELLIPSIS


# ---------------------------------------------------------------------------- Slack
SLACK_TEXT_LIMIT = 3000  # section text
SLACK_HEADER_LIMIT = 150
SLACK_FIELD_LIMIT = 2000
SLACK_FIELDS_PER_SECTION = 10
SLACK_MAX_BLOCKS = 50
SLACK_MAX_SECTIONS = 5


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_blocks(message: Message) -> list[dict[str, Any]]:
    blocks: list[Block] = []
    if message.title:
        blocks.append(HeaderBlock(text=PlainTextObject(text=clip(message.title, SLACK_HEADER_LIMIT))))
    body = slack_escape(message.text)
    if len(body) > SLACK_TEXT_LIMIT * SLACK_MAX_SECTIONS:  # past that a post is unreadable anyway
        body = body[: SLACK_TEXT_LIMIT * SLACK_MAX_SECTIONS - len(TRUNCATED)] + TRUNCATED
    for start in range(0, len(body), SLACK_TEXT_LIMIT):
        blocks.append(SectionBlock(text=MarkdownTextObject(text=body[start : start + SLACK_TEXT_LIMIT])))
    fields = [
        MarkdownTextObject(text=clip(f"*{slack_escape(label)}*\n{slack_escape(value)}", SLACK_FIELD_LIMIT))
        for label, value in message.facts
    ]
    for start in range(0, len(fields), SLACK_FIELDS_PER_SECTION):
        blocks.append(SectionBlock(fields=fields[start : start + SLACK_FIELDS_PER_SECTION]))
    if message.url:
        blocks.append(ActionsBlock(elements=[ButtonElement(text="Open", url=message.url)]))
    if message.template:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"{_ICON[message.status]} {message.template}")]))
    return [b.to_dict() for b in blocks[:SLACK_MAX_BLOCKS]]


def slack_text(message: Message) -> str:
    """The notification / fallback text Slack shows where blocks are not rendered."""
    head = f"{message.title}: " if message.title and message.title != message.text else ""
    return clip(slack_escape(head + message.text), 3000)


# ---------------------------------------------------------------------------- Teams
TEAMS_TEXT_LIMIT = 20000  # Teams refuses messages over ~28 KB


def teams_card(message: Message) -> dict[str, Any]:
    body: list[dict[str, Any]] = []
    if message.title:
        body.append(
            {
                "type": "TextBlock",
                "text": clip(message.title, 300),
                "weight": "Bolder",
                "size": "Medium",
                "color": _TEAMS_COLOR[message.status],
                "wrap": True,
            }
        )
    body.append({"type": "TextBlock", "text": clip(message.text, TEAMS_TEXT_LIMIT), "wrap": True})
    if message.facts:
        body.append(
            {"type": "FactSet", "facts": [{"title": clip(k, 200), "value": clip(v, 1000)} for k, v in message.facts]}
        )
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if message.url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open", "url": message.url}]
    return card


def teams_envelope(card: dict[str, Any]) -> dict[str, Any]:
    """The Workflows webhook message that carries an Adaptive Card."""
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


# ---------------------------------------------------------------------------- Discord
DISCORD_TITLE = 256
DISCORD_DESCRIPTION = 4096
DISCORD_FIELDS = 25
DISCORD_FIELD_NAME = 256
DISCORD_FIELD_VALUE = 1024
DISCORD_MESSAGE_CHARS = 6000  # all embeds of one message together
DISCORD_EMBEDS = 10
DISCORD_MAX_MESSAGES = 3  # past this a message is truncated rather than flooding the channel


def embed_chars(embed: dict[str, Any]) -> int:
    """Characters Discord counts towards the 6000 limit."""
    total = len(embed.get("title", "")) + len(embed.get("description", ""))
    total += sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))
    return total + len(embed.get("footer", {}).get("text", "")) + len(embed.get("author", {}).get("name", ""))


def _chunks(text: str, size: int) -> list[str]:
    """`text` in pieces of at most `size`, cut at a line break or space where one is near."""
    pieces = []
    while len(text) > size:
        cut = max(text.rfind("\n", 0, size), text.rfind(" ", 0, size))
        cut = cut if cut > size // 2 else size
        pieces.append(text[:cut])
        text = text[cut:].lstrip()
    return [*pieces, text] if text else pieces


@dataclass(frozen=True)
class DiscordPlan:
    messages: list[list[dict[str, Any]]]  # each a list of embeds, one webhook call each
    truncated: bool


def discord_embeds(message: Message) -> DiscordPlan:
    color = _DISCORD_COLOR[message.status]
    # One embed can hold more than a whole message may: keep each under the message budget, less
    # room for a title, so that any embed fits in a message of its own.
    budget = DISCORD_MESSAGE_CHARS - DISCORD_TITLE
    embeds: list[dict[str, Any]] = []
    # A long text goes in pieces three of which fit one message (fewer webhook calls).
    size = DISCORD_DESCRIPTION if len(message.text) <= DISCORD_DESCRIPTION else 1900
    for chunk in _chunks(message.text, size) or [""]:
        embed: dict[str, Any] = {"color": color}
        if chunk:
            embed["description"] = chunk
        embeds.append(embed)
    first = embeds[0]
    if message.title:
        first["title"] = clip(message.title, DISCORD_TITLE)
    if message.url:
        first["url"] = message.url
    current = embeds[-1]
    for label, value in message.facts:
        item: dict[str, Any] = {
            "name": clip(label, DISCORD_FIELD_NAME),
            "value": clip(value or "-", DISCORD_FIELD_VALUE),
            "inline": True,
        }
        fields = current.setdefault("fields", [])
        if len(fields) >= DISCORD_FIELDS or embed_chars(current) + len(item["name"]) + len(item["value"]) > budget:
            current = {"color": color, "fields": []}
            embeds.append(current)
            fields = current["fields"]
        fields.append(item)
    messages: list[list[dict[str, Any]]] = [[]]
    for embed in embeds:
        batch = messages[-1]
        if len(batch) >= DISCORD_EMBEDS or sum(map(embed_chars, batch)) + embed_chars(embed) > DISCORD_MESSAGE_CHARS:
            messages.append(batch := [])
        batch.append(embed)
    truncated = len(messages) > DISCORD_MAX_MESSAGES
    if truncated:
        messages = messages[:DISCORD_MAX_MESSAGES]
        last = messages[-1][-1]
        note = TRUNCATED
        if "description" in last:
            last["description"] = last["description"][: DISCORD_DESCRIPTION - len(note)] + note
            while sum(map(embed_chars, messages[-1])) > DISCORD_MESSAGE_CHARS:
                last["description"] = last["description"][: -len(note) - 200] + note
        elif last.get("fields"):
            last["fields"][-1]["value"] = last["fields"][-1]["value"][: DISCORD_FIELD_VALUE - len(note)] + note
            while sum(map(embed_chars, messages[-1])) > DISCORD_MESSAGE_CHARS:
                last["fields"].pop(0)
    return DiscordPlan(messages, truncated)


# ---------------------------------------------------------------------------- email
_HTML = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True).from_string(
    """<!doctype html>
<html><body style="font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; color: #1f2328;">
{% if title %}<h2 style="margin: 0 0 12px 0;">{{ icon }} {{ title }}</h2>{% endif %}
{% for paragraph in paragraphs %}<p style="white-space: pre-wrap;">{{ paragraph }}</p>
{% endfor %}{% if facts %}<table style="border-collapse: collapse;">
{% for label, value in facts %}<tr><th style="text-align: left; padding: 2px 12px 2px 0;">{{ label }}</th>
<td>{{ value }}</td></tr>
{% endfor %}</table>{% endif %}
{% if url %}<p><a href="{{ url }}">Open</a></p>{% endif %}
</body></html>
"""
)


def email_text(message: Message) -> str:
    lines = [message.text]
    if message.facts:
        lines.append("")
        lines.extend(f"{label}: {value}" for label, value in message.facts)
    if message.url:
        lines.extend(["", message.url])
    return "\n".join(lines) + "\n"


def email_html(message: Message) -> str:
    paragraphs = [p for p in message.text.split("\n\n") if p.strip()]
    return _HTML.render(
        title=message.title,
        icon=_ICON[message.status] if message.template else "",
        paragraphs=paragraphs,
        facts=message.facts,
        url=message.url,
    )
