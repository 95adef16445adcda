"""Lab fixtures: namespaces that exist only for one test and are removed even on failure.

Without root or `ip netns` the lab skips with the reason; in CI (CI=true) that is a failure,
because a green CI run must have exercised the real scenarios.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from wizard.lab.netns import LabNet, lab_unavailable


def _require_lab() -> None:
    reason = lab_unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"lab tests cannot run in CI: {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def labnet(request: pytest.FixtureRequest) -> Iterator[LabNet]:
    _require_lab()
    name = request.node.name.removeprefix("test_").replace("_", "")[:12]
    net = LabNet(name)
    net.up()
    try:
        yield net
    finally:
        net.down()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/lab/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.lab)
