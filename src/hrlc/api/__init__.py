"""The HTTP APIs of hrlc: the STAC API (`stac.py`), composed into one application by `app.py`."""

from hrlc.api.app import create_app

__all__ = ["create_app"]
