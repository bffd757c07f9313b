"""An MCP server (the official ``mcp`` SDK) that lets an agent use BecomingONE.

Rule: the tools are thin. :class:`CellTools` does the work with the library
(:func:`~becomingone.analysis.analyze_file`) and a running cell's HTTP API
(:class:`~becomingone.api.client.CellClient`, writes with the API's bearer token). Each tool
runs in a worker thread, so a slow cell never stalls the MCP session. Every failure the caller
can cause (a bad argument, a file that cannot be read, a cell that refuses or cannot be
reached) becomes an MCP *tool error*, one line of text with ``isError``. The server never
crashes on it. :func:`build_mcp_server` registers the tools and resources on an
``MCPServer``; the ``becomingone mcp`` command runs it over stdio or streamable HTTP.

Tools: ``analyze_file``, ``ingest_samples``, ``coherence_now``, ``coherence_history``,
``verify_witness_chain``, ``witness_records`` (a cell's API); ``cluster_status``,
``list_glyphs``, ``submit_glyph``, ``cancel_glyph`` (a cluster's API, ``cluster --serve``);
``propose``, ``list_proposals``, ``vote`` (its consensus, ``cluster --roles --serve``); the
``choir_*`` tools of :mod:`becomingone.api.mcp_choir` (a served Choir).
Resources: ``becomingone://witness/records``
(the newest records) and ``becomingone://coherence/history`` (the stored history), as JSON.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
import httpx
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError

from becomingone import __version__
from becomingone.analysis import AnalysisSettings, analyze_file
from becomingone.api.client import ApiError, CellClient
from becomingone.api.mcp_choir import ChoirTools, register_choir_tools
from becomingone.api.schemas import GlyphCreate
from becomingone.errors import BecomingOneError, InputError, TransportError

__all__ = ["CellTools", "build_mcp_server"]

T = TypeVar("T")

#: Most samples one ``ingest_samples`` call may send (the API has its own, lower caps too).
MAX_SAMPLES = 100_000
#: A proposal id (as ``becomingone vote`` takes it) and a cell's node id.
_PROPOSAL_ID = re.compile(r"[0-9a-f]{16}")
_CELL = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class CellTools:
    """What the MCP tools do, as plain methods (usable and testable without MCP).

    Parameters
    ----------
    url : str, optional
        The running cell's API (``http://127.0.0.1:8787``); without it only ``analyze`` works.
    token : str, optional
        A bearer token of that cell (``becomingone tokens create``), needed to ingest.
    timeout : float
        Seconds per API request.
    """

    def __init__(
        self, url: str | None = None, *, token: str | None = None, timeout: float = 10.0
    ) -> None:
        self.url, self.token, self.timeout = url, token, timeout

    def _client(self) -> CellClient:
        if self.url is None:
            raise InputError("url", "no cell API: start `becomingone mcp` with --url CELL_API")
        return CellClient(self.url, token=self.token, timeout=self.timeout)

    def _call(self, fn: Callable[[CellClient], T]) -> T:
        with self._client() as client:
            try:
                return fn(client)
            except (httpx.HTTPError, TransportError) as exc:
                raise InputError("url", f"cannot reach the cell at {self.url}: {exc}") from exc

    def analyze(
        self,
        path: str,
        *,
        lag: float = 0.1,
        window: float = 2.0,
        threshold: float = 0.95,
        dt: float | None = None,
        kind: Literal["auto", "signal", "phase", "wrapped-phase", "events", "text"] = "auto",
    ) -> dict[str, Any]:
        """The ``becomingone analyze --json`` report of a file on this machine."""
        file = Path(path).expanduser()
        if not file.is_file():
            raise InputError("path", f"{path!r} is not a readable file")
        settings = AnalysisSettings(lag=lag, window=window, threshold=threshold)
        report = analyze_file(file, settings, kind=kind, dt=dt).to_json()
        return {k: v for k, v in report.items() if k not in ("times", "coherence", "terms")}

    def ingest(self, samples: list[float]) -> dict[str, Any]:
        """Queue ``samples`` (one channel) for the running cell; needs the token."""
        if not samples:
            raise InputError("samples", "must hold at least one number")
        if len(samples) > MAX_SAMPLES:
            raise InputError("samples", f"at most {MAX_SAMPLES} per call, got {len(samples)}")
        if not all(math.isfinite(x) for x in samples):
            raise InputError("samples", "must be finite numbers (no NaN or infinity)")
        self._need_token()
        return self._call(lambda c: c.post_signals(samples).model_dump())

    def coherence_now(self) -> dict[str, Any]:
        """The cell's newest Sync decision."""
        return self._call(lambda c: c.coherence_now().model_dump())

    def coherence_history(
        self, start: float | None = None, end: float | None = None, points: int = 200
    ) -> dict[str, Any]:
        """Coherence over ``[start, end]`` stream seconds, at most ``points`` points."""
        if not 1 <= points <= 10_000:
            raise InputError("points", f"must be in [1, 10000], got {points}")
        return self._call(lambda c: c.coherence_history(start, end, points).model_dump())

    def verify(self) -> dict[str, Any]:
        """Walk the cell's whole witness chain against its signed head."""
        return self._call(lambda c: c.verify().model_dump())

    def records(self, start: int | None = None, limit: int = 20) -> dict[str, Any]:
        """A page of witness records (default: the newest ``limit``)."""
        if not 1 <= limit <= 1000:
            raise InputError("limit", f"must be in [1, 1000], got {limit}")

        def page(c: CellClient) -> dict[str, Any]:
            first = start
            if first is None:
                first = max(0, c.records(0, 1).total - limit)
            return c.records(first, limit).model_dump()

        return self._call(page)

    def cluster_status(self, members: bool = True) -> dict[str, Any]:
        """The served cluster: name, topology, ticks, C, band, T_global, rejections and (with
        ``members``) every cell's phase and state."""

        def read(c: CellClient) -> dict[str, Any]:
            out = c.cluster().model_dump()
            if not members and out["frame"] is not None:
                out["frame"].pop("members")
            return out

        return self._call(read)

    def glyphs(self) -> dict[str, Any]:
        """Every glyph of the served cluster with its owner."""
        return self._call(lambda c: c.glyphs().model_dump())

    def submit_glyph(
        self,
        kind: str,
        payload: dict[str, Any] | None = None,
        *,
        theta: float = 0.0,
        energy: float = 100.0,
        lifetime: int = 1000,
        cell: str | None = None,
    ) -> dict[str, Any]:
        """Run a new glyph on the cluster (the least-loaded cell unless ``cell``); needs the
        token."""
        self._need_token()
        fields = {"payload": payload or {}, "theta": theta, "energy": energy}
        return self._call(
            lambda c: c.submit_glyph(kind, cell=cell, lifetime=lifetime, **fields).model_dump()
        )

    def cancel_glyph(self, glyph_id: str) -> dict[str, Any]:
        """End a glyph on its owner (witnessed); needs the token."""
        self._need_token()
        return self._call(lambda c: c.cancel_glyph(glyph_id).model_dump())

    def _need_token(self) -> None:
        if self.token is None:
            raise InputError("token", "writes need a token: set BECOMINGONE_TOKEN")

    def propose(
        self,
        text: str | None = None,
        glyph: str | None = None,
        payload: dict[str, Any] | None = None,
        *,
        theta: float = 0.0,
        energy: float = 100.0,
        lifetime: int = 1000,
        cell: str | None = None,
    ) -> dict[str, Any]:
        """Put a text (a ``command``) or a glyph of kind ``glyph`` (a ``glyph.submit``, with
        its payload, theta, energy, lifetime and cell) to the Validators, as ``becomingone
        propose`` does; needs the token."""
        if (text is None) == (glyph is None):
            raise InputError("text", "give a text or a glyph kind (one of them)")
        if text is not None and not text.strip():
            raise InputError("text", "must not be blank")
        spec = None
        if glyph is not None:
            try:
                spec = GlyphCreate(
                    kind=glyph,
                    payload=payload or {},
                    theta=theta,
                    energy=energy,
                    lifetime=lifetime,
                    cell=cell,
                )
            except ValidationError as exc:
                first = exc.errors()[0]
                raise InputError(str(first["loc"][0]), first["msg"]) from None
        elif payload is not None or cell is not None:
            raise InputError("payload", "payload and cell are for a glyph proposal")
        self._need_token()
        return self._call(lambda c: c.propose(text, glyph=spec).model_dump())

    def proposals(self, everything: bool = False, limit: int = 100) -> dict[str, Any]:
        """The lifecycle, the Genesis, the Validators (who may vote) and the proposals,
        newest first: the operators' only unless ``everything``."""
        if not 1 <= limit <= 1000:
            raise InputError("limit", f"must be in [1, 1000], got {limit}")

        def read(c: CellClient) -> dict[str, Any]:
            roles = c.roles()
            listing = c.proposals(operator=not everything, limit=limit)
            return {
                "lifecycle": roles.lifecycle,
                "genesis": roles.genesis,
                "validators": roles.validators,
                **listing.model_dump(),
            }

        return self._call(read)

    def vote(self, proposal_id: str, choice: str, cell: str) -> dict[str, Any]:
        """Vote ``choice`` (yes or no) on ``proposal_id`` as ``cell``; the proposal after the
        vote (a pass executes it); needs the token."""
        if not _PROPOSAL_ID.fullmatch(proposal_id):
            raise InputError("proposal_id", f"must be 16 hex digits, got {proposal_id!r}")
        if choice not in ("yes", "no"):
            raise InputError("vote", f"must be yes or no, got {choice!r}")
        if not _CELL.fullmatch(cell):
            raise InputError("cell", f"must be a cell's node id, got {cell!r}")
        self._need_token()
        return self._call(lambda c: c.vote(proposal_id, cell, choice == "yes").model_dump())


async def _run(fn: Callable[[], T]) -> T:
    """``fn`` in a worker thread; anything the caller caused becomes a tool error."""
    try:
        return await anyio.to_thread.run_sync(fn)
    except ApiError as exc:
        raise ToolError(f"the cell refused: {exc}") from exc
    except (BecomingOneError, ValueError, OSError) as exc:
        raise ToolError(str(exc)) from exc


def build_mcp_server(tools: CellTools, choir: ChoirTools | None = None) -> MCPServer:
    """An ``MCPServer`` named ``becomingone`` with the tools and resources of ``tools`` and
    the Choir tools of ``choir`` (without one, they answer that no Choir was given)."""
    server: MCPServer = MCPServer(
        "becomingone",
        version=__version__,
        instructions="BecomingONE: analyse streams for temporal coherence (KAIROS), feed a "
        "running cell, read its coherence and verify its signed witness chain.",
        log_level="WARNING",
    )
    _tools(server, tools)
    register_choir_tools(server, choir if choir is not None else ChoirTools())
    _resources(server, tools)
    return server


def _tools(server: MCPServer, tools: CellTools) -> None:
    @server.tool()
    async def analyze_file(
        path: str,
        lag: float = 0.1,
        window: float = 2.0,
        threshold: float = 0.95,
        dt: float | None = None,
        kind: Literal["auto", "signal", "phase", "wrapped-phase", "events", "text"] = "auto",
    ) -> dict[str, Any]:
        """Analyse a CSV or text file on this machine for temporal coherence (KAIROS |T|²):
        collapses, episodes, the dominant frequency. Lag, window and dt in the file's time
        unit (seconds when it has no time column)."""
        return await _run(
            lambda: tools.analyze(
                path, lag=lag, window=window, threshold=threshold, dt=dt, kind=kind
            )
        )

    @server.tool()
    async def ingest_samples(samples: list[float]) -> dict[str, Any]:
        """Send samples (one number per sample) to the running cell (uses the API token)."""
        return await _run(lambda: tools.ingest(samples))

    @server.tool()
    async def coherence_now() -> dict[str, Any]:
        """The running cell's newest decision: |T_master|², |T_emissary|², |T_sync|², outcome."""
        return await _run(tools.coherence_now)

    @server.tool()
    async def coherence_history(
        start: float | None = None, end: float | None = None, points: int = 200
    ) -> dict[str, Any]:
        """The cell's stored coherence over [start, end] stream seconds (downsampled)."""
        return await _run(lambda: tools.coherence_history(start, end, points))

    @server.tool()
    async def verify_witness_chain() -> dict[str, Any]:
        """Verify the cell's whole signed witness chain; names the first bad record if any."""
        return await _run(tools.verify)

    @server.tool()
    async def witness_records(start: int | None = None, limit: int = 20) -> dict[str, Any]:
        """A page of the cell's witness records (default: the newest ``limit``)."""
        return await _run(lambda: tools.records(start, limit))

    @server.tool()
    async def cluster_status(members: bool = True) -> dict[str, Any]:
        """A running cluster (`becomingone cluster --serve`): C_cluster, its band, T_global,
        rejected packets by reason and, with members, each cell's phase and coherence."""
        return await _run(lambda: tools.cluster_status(members))

    @server.tool()
    async def list_glyphs() -> dict[str, Any]:
        """The glyphs (processes) of a running cluster of full cells, with their owners."""
        return await _run(tools.glyphs)

    @server.tool()
    async def submit_glyph(
        kind: str,
        payload: dict[str, Any] | None = None,
        theta: float = 0.0,
        energy: float = 100.0,
        lifetime: int = 1000,
        cell: str | None = None,
    ) -> dict[str, Any]:
        """Run a glyph on the cluster: kind (probe, command, python), its JSON payload, the
        phase theta in [0, 1) it fires at, its energy and lifetime in cycles (uses the token)."""
        return await _run(
            lambda: tools.submit_glyph(
                kind, payload, theta=theta, energy=energy, lifetime=lifetime, cell=cell
            )
        )

    @server.tool()
    async def cancel_glyph(glyph_id: str) -> dict[str, Any]:
        """End a glyph of the cluster on its owner (uses the token)."""
        return await _run(lambda: tools.cancel_glyph(glyph_id))

    _consensus_tools(server, tools)


def _consensus_tools(server: MCPServer, tools: CellTools) -> None:
    @server.tool()
    async def propose(
        text: str | None = None,
        glyph: str | None = None,
        payload: dict[str, Any] | None = None,
        theta: float = 0.0,
        energy: float = 100.0,
        lifetime: int = 1000,
        cell: str | None = None,
    ) -> dict[str, Any]:
        """Put a proposal to a `cluster --roles` cluster's Validators (uses the token): either
        a text (a command: delegated when it passes) or a glyph kind (probe, command, python)
        with its JSON payload, phase theta in [0, 1), energy, lifetime in cycles and owning
        cell (run when it passes). Returns the open proposal: its id, who may vote, votes needed."""
        return await _run(
            lambda: tools.propose(
                text, glyph, payload, theta=theta, energy=energy, lifetime=lifetime, cell=cell
            )
        )

    @server.tool()
    async def list_proposals(all: bool = False, limit: int = 100) -> dict[str, Any]:
        """The cluster's lifecycle stage, Genesis and Validators (the cells that may vote) and
        its proposals, newest first: the operators' only, or with all also the cluster's own
        (roles, intents)."""
        return await _run(lambda: tools.proposals(all, limit))

    @server.tool()
    async def vote(proposal_id: str, vote: Literal["yes", "no"], cell: str) -> dict[str, Any]:
        """Vote yes or no on a proposal as one of the cluster's cells (an eligible Validator;
        uses the token). Returns the proposal after the vote: passed once enough Validators
        said yes (then executed), refused with the consensus' reason otherwise."""
        return await _run(lambda: tools.vote(proposal_id, vote, cell))


def _resources(server: MCPServer, tools: CellTools) -> None:
    @server.resource(
        "becomingone://witness/records",
        name="witness-records",
        description="The newest 100 witness records of the cell (JSON).",
        mime_type="application/json",
    )
    async def witness_resource() -> str:
        return json.dumps(await _run(lambda: tools.records(None, 100)))

    @server.resource(
        "becomingone://coherence/history",
        name="coherence-history",
        description="The cell's stored coherence history, up to 1000 points (JSON).",
        mime_type="application/json",
    )
    async def history_resource() -> str:
        return json.dumps(await _run(lambda: tools.coherence_history(None, None, 1000)))
