"""A stage's arguments as a command line, both ways, generated from the model's fields.

``render(args)`` gives ``[<stage>, --field-name, value, ...]``: every field that is not None, in
declaration order. A field whose JSON form is a string (str, Literal, date, datetime, a str | None)
is written as its text; any other (numbers, booleans, lists, objects) as compact JSON.

``stage_command(app, Model, run)`` adds the stage's command to a service's Typer app with one
``--option`` per field (help from the field's description), so the CLI accepts exactly the model
and nothing else; ``parse(Model, argv)`` runs the same command and returns the model. A value the
model refuses is a usage error naming the option (exit 2).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Sequence
from functools import cache
from typing import Annotated, Any, TypeVar

import typer
from pydantic import TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from clinops_common.contracts.stages import StageArgs

A = TypeVar("A", bound=StageArgs)


def option(name: str) -> str:
    """``run_id`` -> ``--run-id``."""
    return "--" + name.replace("_", "-")


@cache
def _is_text(model: type[StageArgs], name: str) -> bool:
    """True when the field's JSON form is a string (then its command-line value is plain text)."""
    annotation: Any = model.model_fields[name].annotation
    schema = TypeAdapter[Any](annotation).json_schema()
    kinds = [schema, *schema.get("anyOf", [])]
    types = {k["type"] for k in kinds if k.get("type") not in (None, "null")}
    return types == {"string"}


def render(args: StageArgs) -> list[str]:
    """The command line that makes the stage's CLI parse ``args`` back."""
    argv = [args.stage.value]
    data = args.model_dump(mode="json")
    for name in type(args).model_fields:
        value = data[name]
        if value is None:
            continue
        text = value if _is_text(type(args), name) and isinstance(value, str) else _json(value)
        argv += [option(name), text]
    return argv


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def from_options(model: type[A], raw: dict[str, str | None]) -> A:
    """Build ``model`` from the options' text (None = not given: the field's default)."""
    values: dict[str, Any] = {}
    for name, text in raw.items():
        if text is None:
            continue
        if _is_text(model, name):
            values[name] = text
            continue
        try:
            values[name] = json.loads(text)
        except json.JSONDecodeError:
            values[name] = text  # let the model say what it expected
    try:
        return model.model_validate(values)
    except ValidationError as err:
        problems = "; ".join(
            f"{option(str(e['loc'][0])) if e['loc'] else model.__name__}: {e['msg']}" for e in err.errors()
        )
        raise typer.BadParameter(problems) from err


def _help(field: FieldInfo) -> str:
    text = field.description or ""
    if field.is_required():
        return f"{text} (required)"
    default = field.get_default(call_default_factory=True)
    if default is None:
        return text
    shown = default if isinstance(default, str) else _json(TypeAdapter(Any).dump_python(default, mode="json"))
    return f"{text} (default: {shown})"


def stage_command(app: typer.Typer, model: type[A], run: Callable[[A], None]) -> None:
    """Add ``model.stage`` as a command of ``app``: its options are the model's fields, it calls ``run(args)``."""
    params = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                str | None,
                typer.Option(
                    option(name),
                    help=_help(f),
                    show_default=False,
                    metavar="TEXT" if _is_text(model, name) else "JSON",
                ),
            ],
        )
        for name, f in model.model_fields.items()
    ]

    def command(**raw: str | None) -> None:
        missing = [option(n) for n, f in model.model_fields.items() if f.is_required() and raw.get(n) is None]
        if missing:
            raise typer.BadParameter(f"missing option(s): {', '.join(missing)}")
        run(from_options(model, raw))

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = model.__doc__
    app.command(model.stage.value)(command)


def parse(model: type[A], argv: Sequence[str]) -> A:
    """Parse a rendered command line with the stage's own command (as its CLI does)."""
    parsed: list[A] = []
    app = typer.Typer(add_completion=False)
    stage_command(app, model, parsed.append)

    @app.callback()
    def _group() -> None:
        """Keeps the stage's name as a command, as in the service's app."""

    typer.main.get_command(app).main(list(argv), prog_name="stage", standalone_mode=False)
    return parsed[0]
