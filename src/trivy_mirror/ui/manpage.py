"""Man pages in roff, rendered from the click commands' own help: one text, shown by --help and by man(1).

A command's help is paragraphs, some marked ``\\b`` (kept as written: examples, tables); they become filled
paragraphs and ``.nf`` blocks. Each option is listed with its metavar, default and environment variable.
"""

from __future__ import annotations

import inspect

import click

from trivy_mirror.version import __version__

PROG = "trivy-mirror"
SECTION = "1"


def pages(group: click.Group) -> dict[str, str]:
    """File name to roff text: the group's page and one per command."""
    context = click.Context(group, info_name=PROG, **group.context_settings)
    found = {f"{PROG}.{SECTION}": _group_page(group, context)}
    for name, command in sorted(group.commands.items()):
        sub = click.Context(command, info_name=name, parent=context, **command.context_settings)
        found[f"{PROG}-{name}.{SECTION}"] = _command_page(name, command, sub)
    return found


def _group_page(group: click.Group, context: click.Context) -> str:
    lines = _header(PROG, group.get_short_help_str(limit=200))
    lines += [".SH SYNOPSIS", f"\\fB{_escape(PROG)}\\fR [\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]..."]
    lines += [".SH DESCRIPTION", *_text(group.help or "")]
    lines += [".SH OPTIONS", *_options(group, context)]
    lines += [".SH COMMANDS"]
    for name, command in sorted(group.commands.items()):
        lines += [".TP", f"\\fB{_escape(name)}\\fR", _escape(command.get_short_help_str(limit=200)),
                  f"See \\fB{_escape(PROG + '-' + name)}\\fR(1)."]
    lines += [".SH ENVIRONMENT", "Every option may be set by a variable: TRIVY_MIRROR_ and the long flag in "
              "capitals, dashes as underscores (\\fB\\-\\-sync\\-every\\fR: TRIVY_MIRROR_SYNC_EVERY).",
              ".SH FILES", ".TP", "\\fI$XDG_CONFIG_HOME/trivy\\-mirror/config.yaml\\fR",
              "The config file (\\fB\\-\\-config\\fR): its keys are the long flags, at the top level for every "
              "command, in a section named after a command for that command only."]
    see_also = (f"\\fB{_escape(PROG + '-' + name)}\\fR(1)" for name in sorted(group.commands))
    lines += [".SH SEE ALSO", ", ".join(see_also)]
    return "\n".join(lines) + "\n"


def _command_page(name: str, command: click.Command, context: click.Context) -> str:
    lines = _header(f"{PROG}-{name}", command.get_short_help_str(limit=200))
    usage = " ".join(_escape(piece) for piece in command.collect_usage_pieces(context))
    lines += [".SH SYNOPSIS", f"\\fB{_escape(PROG)} {_escape(name)}\\fR {usage}"]
    lines += [".SH DESCRIPTION", *_text(command.help or "")]
    lines += [".SH OPTIONS", *_options(command, context)]
    lines += [".SH SEE ALSO", f"\\fB{_escape(PROG)}\\fR(1)"]
    return "\n".join(lines) + "\n"


def _header(title: str, summary: str) -> list[str]:
    return [f'.TH "{title.upper()}" "{SECTION}" "" "{PROG} {__version__}" "User Commands"',
            ".SH NAME", f"{_escape(title)} \\- {_escape(summary)}"]


def _options(command: click.Command, context: click.Context) -> list[str]:
    lines: list[str] = []
    for param in command.params:  # not --help: every command has it, and click caches it per context settings
        # Options only: the synopsis names the arguments, and click 8.5 gives arguments help records too.
        record = param.get_help_record(context) if isinstance(param, click.Option) else None
        if record is None:
            continue
        flags, help_text = record
        lines += [".TP", f"\\fB{_escape(flags)}\\fR", _escape(help_text)]
        variables = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar or ())
        if variables:
            lines += [".br", f"Environment: {_escape(', '.join(variables))}."]
    return lines


def _text(help_text: str) -> list[str]:
    """click's help paragraphs as roff: ``\\b`` paragraphs verbatim, the others filled."""
    lines: list[str] = []
    for paragraph in inspect.cleandoc(help_text).split("\n\n"):
        rows = [row.rstrip() for row in paragraph.splitlines() if row.strip()]
        if rows and rows[0].strip() == "\b":
            lines += [".PP", ".nf", *(_escape(row) for row in rows[1:]), ".fi"]
        elif rows:
            lines += [".PP", _escape(" ".join(row.strip() for row in rows))]
    return lines


def _escape(text: str) -> str:
    """Roff-safe text: backslashes and dashes escaped, no line starting as a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text.startswith((".", "'")) else text
