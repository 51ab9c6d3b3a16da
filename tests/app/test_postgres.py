"""Two workers of the lab on one study in a real, throw-away PostgreSQL server."""

from __future__ import annotations

import pytest

from test_sweeper import check_two_workers

pytestmark = pytest.mark.postgres


def test_two_workers_share_one_postgres_study(tmp_path, postgres_url, tiny_data_root):
    check_two_workers(postgres_url, tmp_path / "w", tiny_data_root)
