"""The installed hyso-tokenizer distribution: version and namespace layout."""

from importlib.metadata import version

import hyso.core.tokenizer as pkg


def test_version_matches_distribution_metadata() -> None:
    assert pkg.__version__ == version("hyso-tokenizer")


def test_hyso_and_core_are_namespace_packages() -> None:
    import hyso
    import hyso.core

    # PEP 420 namespace packages have no __file__ and no __init__ module.
    assert getattr(hyso, "__file__", None) is None
    assert getattr(hyso.core, "__file__", None) is None


def test_py_typed_marker_ships() -> None:
    from importlib.resources import files

    assert files(pkg).joinpath("py.typed").is_file()
