"""The dashboard: ``/`` answers the page, ``/static/*`` the built bundle, its CSS and HTML.

Rule: the files are the package data under ``becomingone/api/static`` (built from ``web/`` by
esbuild and committed; ``make test`` fails when they differ from a fresh build), so serving the
dashboard needs no Node. They hold no data of the cell: every number on the page comes from
the ``/api/v1`` routes, under their own access rules. None of this is in the OpenAPI schema.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["STATIC", "router", "static_files"]

#: The directory of the built dashboard inside the installed package.
STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    """The dashboard page."""
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


def static_files() -> StaticFiles:
    """The built files (``dashboard.js``, ``dashboard.css``, ``index.html``) for ``/static``."""
    return StaticFiles(directory=STATIC, check_dir=True)
