"""One test per web suite that skips, with the suite's marker, when the suite's
framework is missing (conftest.py then does not collect the suite): CI requires
the markers (``CARTPAY_REQUIRE_SUITES``), so a missing framework fails CI instead
of passing with the suite quietly left out."""

from __future__ import annotations

import pytest

from .conftest import _NEEDS, _missing


@pytest.mark.parametrize(
    "module",
    [
        pytest.param("test_fastapi.py", marks=pytest.mark.fastapi),
        pytest.param("test_django.py", marks=pytest.mark.django),
        pytest.param("test_flask_example.py", marks=pytest.mark.flask),
        pytest.param("test_shop_browser.py", marks=pytest.mark.browser),
    ],
)
def test_the_suite_can_run(module: str) -> None:
    needs = _NEEDS[module]
    if _missing(needs):
        pytest.skip(
            f"{module} needs {', '.join(needs)}: pip install it (the nox tests session does)"
        )
    assert module in _NEEDS
