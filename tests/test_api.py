"""segx.api exposes the Python API the CLI wraps, and each name is the object the commands use."""
from __future__ import annotations

import segx.api as api


def test_api_names_resolve_to_the_implementations() -> None:
    import exporters
    import segx.evaluate
    import segx.train

    for name in api.__all__:
        assert getattr(api, name) is not None, name
    assert api.train is segx.train.train and api.evaluate is segx.evaluate.evaluate
    assert api.export is exporters.export
    assert "lraspp_mobilenet_v3_large" in api.list_archs()
