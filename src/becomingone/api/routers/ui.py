"""The dashboard: ``/`` answers the page, ``/static/*`` the built bundle, its CSS and HTML;
``/choir/`` answers the Choir page (its bundle is under ``/static/choir/``).

Rule: the files are the package data under ``becomingone/api/static`` (built from ``web/`` by
esbuild and committed; ``make test`` fails when they differ from a fresh build), so serving the
dashboard needs no Node. They hold no data of the cell: every number on the page comes from
the ``/api/v1`` routes, under their own access rules. None of this is in the OpenAPI schema.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["STATIC", "router", "static_files"]

#: The directory of the built dashboard inside the installed package.
STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    """The dashboard page."""
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


@router.get("/choir")
async def choir_redirect() -> RedirectResponse:
    """``/choir`` without the slash: the page's relative links need ``/choir/``."""
    return RedirectResponse("/choir/", status_code=308)


@router.get("/choir/")
async def choir() -> FileResponse:
    """The Choir page (StreamChat, MessageFlow, ApprovalPane; data from /api/v1/choir)."""
    return FileResponse(STATIC / "choir" / "index.html", media_type="text/html; charset=utf-8")


def static_files() -> StaticFiles:
    """The built files (``dashboard.js``, ``dashboard.css``, ``index.html``) for ``/static``."""
    return StaticFiles(directory=STATIC, check_dir=True)
