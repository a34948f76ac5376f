"""The flat public API: every exported name resolves, and documents itself."""

import primekit


def test_every_public_name_resolves_and_has_a_docstring():
    for name in primekit.__all__:
        value = getattr(primekit, name)
        assert value.__doc__, f"primekit.{name} has no docstring"


def test_unknown_names_raise_attribute_error():
    try:
        primekit.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
