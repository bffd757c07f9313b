"""The ``cluster`` and ``simulate`` commands, run as real subprocesses."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from becomingone.certs import cluster_uri
from becomingone.cli import EXIT_BROKEN_PIPE

CLI = [sys.executable, "-m", "becomingone.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI and capture its output."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, check=False)


def test_cluster_json_lines_summary_and_plot(tmp_path: Path) -> None:
    """--json prints one object per tick with the required keys, then a summary; --plot saves."""
    png = tmp_path / "cluster.png"
    out = run(
        "cluster",
        "--nodes",
        "8",
        "--topology",
        "hub",
        "--duration",
        "12",
        "--tick",
        "50",
        "--fast",
        "--json",
        "--drift",
        "100",
        "--plot",
        str(png),
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    ticks, summary = lines[:-1], lines[-1]
    assert len(ticks) == 240
    assert {"tick", "c_cluster", "r", "band", "rejected"} <= set(ticks[0])
    assert summary["summary"] and summary["band"] == "SHARED"
    assert summary["ticks_to_band"]["SHARED"] is not None
    assert png.stat().st_size > 10_000


def test_full_cells_json_rows_carry_t_global_and_count_cluster_collapses(tmp_path: Path) -> None:
    """With full cells every --json row has ``t_global`` ([re, im]) and ``t_global_sq``; the
    summary counts the driver's cluster collapses (one per upward crossing of I_c) and the
    cells' own, witnessed on their chains (all verified)."""
    out = run(
        "cluster", "--nodes", "4", "--cells", "full", "--fast", "--json", "--duration", "10",
        "--alpha", "0.2", "--data-dir", str(tmp_path),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    ticks, summary = lines[:-1], lines[-1]
    for row in ticks:
        re, im = row["t_global"]
        assert row["t_global_sq"] == pytest.approx(re * re + im * im)
    crossings = sum(row["cluster_collapse"] for row in ticks)
    assert summary["cluster_collapses"] == crossings >= 1
    assert max(row["t_global_sq"] for row in ticks) >= 0.95
    assert summary["cells"]["cluster_collapses"] >= 4
    assert summary["cells"]["chains_verified"] == 4


def test_cluster_live_view_prints_summary() -> None:
    """Without --json, the live view ends with a summary table."""
    out = run("cluster", "--nodes", "4", "--topology", "ring", "--duration", "1", "--fast")
    assert out.returncode == 0, out.stderr
    assert "ticks to SHARED" in out.stdout and "C_cluster" in out.stdout


def test_bad_cli_values_exit_2_naming_the_option() -> None:
    """A bad --alpha or --loss exits with status 2 and names the option."""
    out = run("cluster", "--alpha", "3")
    assert out.returncode == 2 and "--alpha" in out.stderr
    out = run("simulate", "--loss", "1.5")
    assert out.returncode == 2 and "loss" in out.stderr


def test_simulate_table_and_json(tmp_path: Path) -> None:
    """simulate prints rounds to each level next to the prediction, and JSON on request."""
    out = run("simulate", "--nodes", "2000", "--rounds", "400", "--plot", str(tmp_path / "s.png"))
    assert out.returncode == 0, out.stderr
    assert "rounds to C >= 0.99" in out.stdout
    data = json.loads(run("simulate", "--nodes", "500", "--topology", "ring", "--json").stdout)
    assert data["topology"] == "ring" and isinstance(data["winding"], int)
    assert (tmp_path / "s.png").stat().st_size > 10_000


def test_seed_and_absurd_numbers_are_one_line_errors() -> None:
    """--seed -1 and other negative or absurd numbers exit 2 with one line naming the flag."""
    cases = [
        ("cluster", "--seed", "-1"),
        ("cluster", "--nodes", "0"),
        ("cluster", "--drift", "-5"),
        ("cluster", "--duration", "1e30"),
        ("cluster", "--branching", "1"),
        ("simulate", "--seed", "-1"),
        ("simulate", "--rounds", "-5"),
        ("simulate", "--rounds", "10000000", "--nodes", "100000"),
        ("simulate", "--jitter", "nan"),
    ]
    for args in cases:
        out = run(*args)
        flag = next(a for a in args if a.startswith("--"))
        assert out.returncode == 2, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1 and flag in out.stderr, out.stderr
        assert "Traceback" not in out.stderr


def test_json_into_a_pipe_closed_early_exits_cleanly() -> None:
    """`cluster --json | head -1` and `simulate ... | head -1`: the reader leaves after one
    line; the command stops without a traceback and exits 141 like every command (cli.main)."""
    commands = [
        ["cluster", "--nodes", "8", "--fast", "--json", "--duration", "600"],
        ["simulate", "--nodes", "200", "--rounds", "60000", "--every", "1"],
    ]
    for args in commands:
        proc = subprocess.Popen(
            [*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()
        try:
            rc = proc.wait(timeout=120)
        finally:
            proc.kill()
        err = proc.stderr.read()
        proc.stderr.close()
        assert first.strip(), args
        assert rc == EXIT_BROKEN_PIPE, (args, rc, err)
        assert "Traceback" not in err and "BrokenPipe" not in err, (args, err)


def test_non_tty_run_prints_progress_lines_about_once_a_second() -> None:
    """Without a terminal and without --json, a 3 s run prints a progress line about every
    second (not nothing until exit), then the summary."""
    out = run("cluster", "--nodes", "4", "--topology", "hub", "--duration", "3")
    assert out.returncode == 0, out.stderr
    progress = [line for line in out.stdout.splitlines() if line.startswith("tick ")]
    assert 3 <= len(progress) <= 6, out.stdout
    assert progress[-1].startswith("tick 60/60")
    assert "ticks to SHARED" in out.stdout


def test_too_big_mesh_warns_up_front_and_suggests_fractal() -> None:
    """A mesh too large for its tick gets one warning line on stderr naming fractal/hub."""
    out = run("cluster", "--nodes", "300", "--duration", "0.05", "--fast", "--json")
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "fractal" in warnings[0] and "300 cells" in warnings[0]
    quiet = run("cluster", "--nodes", "8", "--duration", "0.05", "--fast", "--json")
    assert "warning" not in quiet.stderr


def test_cluster_section_of_the_config_is_used_and_flags_win(tmp_path: Path) -> None:
    """cluster: in --config sets topology (and the rest) for cluster and simulate; a flag
    given on the command line wins; a bad value in the file names its key."""
    cfg = tmp_path / "b1.yaml"
    cfg.write_text("becomingone:\n  cluster:\n    topology: ring\n    tick: 0.1\n    alpha: 0.05\n")
    base = ["cluster", "--config", str(cfg), "--nodes", "4", "--fast", "--json"]
    lines = run(*base, "--duration", "1").stdout.splitlines()
    assert len(lines) == 10 + 1  # 1 s of 0.1 s ticks, then the summary
    assert isinstance(json.loads(lines[0])["winding"], int)  # ring
    lines = run(*base, "--duration", "1", "--topology", "mesh", "--tick", "50").stdout
    assert (
        len(lines.splitlines()) == 20 + 1 and json.loads(lines.splitlines()[0])["winding"] is None
    )
    sim = run("simulate", "--config", str(cfg), "--nodes", "50", "--rounds", "10", "--json")
    assert json.loads(sim.stdout)["topology"] == "ring"
    sim = run(
        "simulate",
        "--config",
        str(cfg),
        "--nodes",
        "50",
        "--rounds",
        "10",
        "--json",
        "--topology",
        "hub",
    )
    assert json.loads(sim.stdout)["topology"] == "hub"
    cfg.write_text("becomingone:\n  cluster:\n    alpha: 3\n")
    bad = run("cluster", "--config", str(cfg))
    assert bad.returncode == 2 and "cluster.alpha" in bad.stderr


def test_argparse_defaults_come_from_the_schema() -> None:
    """With no flags and no file, the settings are exactly ClusterConfig's defaults."""
    from becomingone.cli import build_parser
    from becomingone.commands.cluster import cluster_settings
    from becomingone.config import CellConfig, ClusterConfig

    for command in ("cluster", "simulate"):
        args = build_parser().parse_args([command])
        assert cluster_settings(args, CellConfig()) == ClusterConfig()


def test_bad_plot_paths_are_refused_before_the_run(tmp_path: Path) -> None:
    """`cluster` and `simulate` check --plot before running (unsupported extension, a path
    under a regular file): one line naming plot, exit 2, and no run output at all."""
    a_file = tmp_path / "f"
    a_file.write_text("x")
    for cmd in (
        ["cluster", "--nodes", "4", "--fast", "--duration", "5", "--json"],
        ["simulate", "--nodes", "100", "--rounds", "10", "--json"],
    ):
        for plot, words in (
            (tmp_path / "p.txt", "unsupported extension"),
            (a_file / "p.png", "is a file"),
        ):
            out = run(*cmd, "--plot", str(plot))
            assert out.returncode == 2, out.stderr
            assert out.stdout == ""
            assert words in out.stderr and "plot" in out.stderr
            assert len(out.stderr.strip().splitlines()) == 1


def test_glyphs_json_rows_and_summary_count_fires_from_the_chains(tmp_path: Path) -> None:
    """``--glyphs 8`` loads 8 probes on the first 3 of 4 full cells: every row carries each
    cell's glyph count and fires; the summary's fires equal the ``glyph.fired`` records on the
    cells' chains, with no (glyph, cycle) twice, no glyph lost, and every chain verified."""
    import sqlite3

    out = run(
        "cluster", "--glyphs", "8", "--nodes", "4", "--fast", "--json", "--duration", "5",
        "--data-dir", str(tmp_path),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    ticks, summary = lines[:-1], lines[-1]
    last = ticks[-1]["glyphs"]
    assert [last[c]["glyphs"] for c in sorted(last)] == [3, 3, 2, 0]
    assert all(set(row["glyphs"]) == set(last) for row in ticks)
    assert all(last[c]["value"] >= 0.0 for c in sorted(last)[:3])  # the load average read
    assert last[sorted(last)[3]]["value"] is None
    g = summary["glyphs"]
    assert g["glyphs"] == 8 and g["owned"] == 8 and g["glyphs_lost"] == 0
    assert g["double_fires"] == 0 and g["errors"] == 0
    assert g["fires"] == sum(c["fires"] for c in last.values()) >= 8 * 4
    keys = []
    for cell in sorted(last):
        with sqlite3.connect(tmp_path / cell / "memory.sqlite3") as db:
            rows = db.execute("SELECT payload FROM witness WHERE kind = 'glyph.fired'")
            keys += [(cell, p["glyph"], p["cycle"]) for p in map(json.loads, (r[0] for r in rows))]
    assert len(keys) == len(set(keys)) == g["fires"]
    assert summary["cells"]["chains_verified"] == 4


def test_glyphs_migrate_once_shared_and_rows_carry_them(tmp_path: Path) -> None:
    """With α = 0.2 the cluster is SHARED within 3 s: the 3/3/2/0 start spreads to 2/2/2/2,
    the rows carry the migrator's counts (0 before SHARED), the summary counts 2 migrations
    with no glyph lost and no double fire, and every chain (with its glyph.migrate records)
    verifies; the glyph.migrate.run records on the chains equal the migrations."""
    import sqlite3

    out = run(
        "cluster", "--glyphs", "8", "--nodes", "4", "--fast", "--json", "--duration", "3",
        "--alpha", "0.2", "--data-dir", str(tmp_path),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    ticks, summary = lines[:-1], lines[-1]
    assert all("migrations" in row for row in ticks)
    assert all(row["migrations"] == {} for row in ticks if row["band"] != "SHARED")
    last = ticks[-1]["glyphs"]
    assert [last[c]["glyphs"] for c in sorted(last)] == [2, 2, 2, 2]
    g = summary["glyphs"]
    assert g["migrations"] == 2 and g["glyphs_lost"] == 0 and g["double_fires"] == 0
    runs = 0
    for cell in sorted(last):
        with sqlite3.connect(tmp_path / cell / "memory.sqlite3") as db:
            rows = db.execute("SELECT count(*) FROM witness WHERE kind = 'glyph.migrate.run'")
            runs += rows.fetchone()[0]
    assert runs == 2 and summary["cells"]["chains_verified"] == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--glyphs", "-1", "--fast"], "--glyphs: must be in [0, 100000], got -1"),
        (["--glyphs", "2", "--cells", "cps", "--fast"], "--glyphs: needs full cells"),
        (["--glyphs", "1001", "--bus", "nats"], "--glyphs: with --bus nats at most 1000"),
    ],
)
def test_bad_glyph_options_exit_2(args: list[str], message: str) -> None:
    """A bad ``--glyphs`` is a one-line error naming the option, exit status 2."""
    out = run("cluster", "--nodes", "2", "--duration", "0.1", *args)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_nats_cluster_glyphs_are_counted_from_the_records_and_fire_logs(tmp_path: Path) -> None:
    """`cluster --bus nats --nodes 4 --glyphs 8` (a real nats-server and four node processes):
    the 8 probes start 3/3/2 on the first three nodes and the migrations spread them; each
    JSON row carries every node's glyph row (from its status); the summary's glyph totals
    are counted — every glyph still has its record (none lost), the
    fires equal the rows of the nodes' fire logs, no (glyph, cycle) key is in two logs, and
    the migrations are the epochs of the records (at least one: the fourth node got glyphs)."""
    out = run(
        "cluster", "--bus", "nats", "--nodes", "4", "--glyphs", "8", "--alpha", "0.3",
        "--duration", "20", "--json", "--data-dir", str(tmp_path),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    *rows, summary = [json.loads(line) for line in out.stdout.splitlines()]
    g = summary["glyphs"]
    assert (g["glyphs"], g["owned"], g["ended"], g["glyphs_lost"]) == (8, 8, 0, 0), g
    last = rows[-1]["glyphs"]  # each node's row from its status: the glyphs it owns
    assert sorted(last) == [f"cell-000{i}" for i in range(4)], last
    assert sum(r["glyphs"] for r in last.values()) == 8 and "list" not in last["cell-0000"]
    assert {"kairos", "rejected"} <= set(last["cell-0000"])
    assert "migrations" not in last["cell-0000"]
    # migrations per row: the nodes' ownership counters from their statuses, summed (each
    # counted once, by its source on the drop); they only grow and the last row's (a tick
    # old) is at most the records' count
    moved = [r["migrations"].get("migrations", 0) for r in rows]
    assert all("migrations" in r for r in rows) and moved == sorted(moved)
    keys = []
    for path in sorted((tmp_path / "nodes").glob("*/glyph_fires.sqlite3")):
        with sqlite3.connect(path) as db:
            keys += db.execute("SELECT glyph, cycle FROM fires").fetchall()
    assert g["fires"] == len(keys) > 8 and g["double_fires"] == 0
    assert len(set(keys)) == len(keys)
    owners = json.loads(out.stderr.split("glyphs per owner ")[1].splitlines()[0].replace("'", '"'))
    assert sum(owners.values()) == 8 and "cell-0003" in owners, owners
    assert g["migrations"] >= 1
    final = rows[-1]["migrations"]
    assert final.get("takeovers", 0) == 0 and 1 <= moved[-1] <= g["migrations"], (final, g)
    assert final["offered"] >= final["accepted"] >= moved[-1], final


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_nats_tls_cluster_glyphs_run_on_cluster_bound_certificates(tmp_path: Path) -> None:
    """`cluster --bus nats --tls --glyphs 8` (a real TLS nats-server, four node processes):
    the launcher issues node certificates bound to the cluster and starts the server with the
    cluster's grant, so the nodes write their glyph records and migrate over NATS with mutual
    TLS — glyphs spread (migrations counted in the rows and from the records), none lost, no
    (glyph, cycle) fired twice, and the server logged no permission violation."""
    out = run(
        "cluster", "--bus", "nats", "--tls", "--nodes", "4", "--glyphs", "8", "--alpha", "0.3",
        "--duration", "12", "--json", "--data-dir", str(tmp_path),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    *rows, summary = [json.loads(line) for line in out.stdout.splitlines()]
    g = summary["glyphs"]
    assert (g["owned"], g["glyphs_lost"], g["double_fires"]) == (8, 0, 0), g
    assert g["migrations"] >= 1 and rows[-1]["migrations"]["migrations"] >= 1, (g, rows[-1])
    assert sum(r["glyphs"] for r in rows[-1]["glyphs"].values()) == 8
    for i in range(4):
        pem = (tmp_path / "certs" / f"cell-000{i}.crt").read_bytes()
        sans = x509.load_pem_x509_certificate(pem).extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        )
        assert sans.value.get_values_for_type(x509.UniformResourceIdentifier)[0] == cluster_uri(
            "local"
        )
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "nats").glob("*.log"))
    assert "Violation" not in logs and logs


def test_cps_cells_show_no_t_global_full_cells_do(tmp_path: Path) -> None:
    """CPS-only cells share no T_sync: off a terminal their progress lines show |T_global|² as
    "-" and the summary says why, instead of a misleading 0.0000; full cells show the value."""
    done = run("cluster", "--nodes", "4", "--fast", "--duration", "2")
    assert done.returncode == 0, done.stderr
    assert "|T_global|² -  " in done.stdout and "cps cells share no T_sync" in done.stdout
    assert "final |T_global|²" not in done.stdout
    done = run(
        "cluster", "--nodes", "3", "--fast", "--duration", "2", "--cells", "full",
        "--data-dir", str(tmp_path / "c"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "|T_global|² -" not in done.stdout and "final |T_global|²" in done.stdout


def test_roles_json_rows_carry_lifecycle_cells_and_conditions(tmp_path: Path) -> None:
    """--roles --json: every row has ``lifecycle``, each cell's ``state`` and ``role`` and the
    named conditions; 16 cells reach AUTONOMOUS; the summary's ``partifacts`` counts the
    decisions, kept in consensus.db under --data-dir and replayed by the next run."""
    args = ["cluster", "--nodes", "16", "--roles", "--fast", "--json", "--alpha", "0.3",
            "--tick", "10", "--duration", "6", "--data-dir", str(tmp_path)]  # fmt: skip
    out = run(*args)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    ticks, summary = lines[:-1], lines[-1]
    assert {"lifecycle", "cells", "conditions", "events"} <= set(ticks[0])
    assert ticks[0]["cells"]["cell-0000"] == {"state": "Ø1(Ø2)", "role": None}
    assert len(ticks[-1]["conditions"]) == 12
    assert ticks[-1]["lifecycle"] == "autonomous"
    events = {e["event"] for t in ticks for e in t["events"]}
    assert {"role.changed", "role.transfer", "proposal.opened", "proposal.decided"} <= events
    doc = summary["partifacts"]
    assert doc["lifecycle"] == "autonomous" and doc["ticks_to_stage"]["autonomous"] is not None
    assert doc["decisions"]["passed"] == doc["log_entries"] > 0 and doc["restored"] == 0
    again = run(*args[:-4], "--duration", "0.5", "--data-dir", str(tmp_path))
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.splitlines()[-1])["partifacts"]["restored"] == doc["log_entries"]


def test_roles_table_and_progress_lines() -> None:
    """Without --json, --roles adds the lifecycle and the role counts to the progress lines
    and the lifecycle, roles and decisions to the summary table."""
    out = run("cluster", "--nodes", "8", "--roles", "--fast", "--alpha", "0.3", "--tick", "10",
              "--duration", "4")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "lifecycle autonomous  roles G/E/V/I 1/" in out.stdout
    assert "unmet conditions" in out.stdout and "decisions" in out.stdout


def test_roles_on_nats_is_refused() -> None:
    """--roles with --bus nats exits 2 naming --roles (in-process only for now)."""
    out = run("cluster", "--roles", "--bus", "nats")
    assert out.returncode == 2 and "--roles" in out.stderr and "Traceback" not in out.stderr


def test_silenced_genesis_is_replaced_and_reported() -> None:
    """--silence-genesis 4: the summary reports one failover, from the first Genesis to
    another cell, within genesis_timeout (1 s) + one vote after the silence."""
    out = run("cluster", "--nodes", "16", "--roles", "--fast", "--json", "--alpha", "0.3",
              "--tick", "10", "--duration", "6", "--silence-genesis", "4")  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout.splitlines()[-1])["partifacts"]
    [f] = doc["failovers"]
    assert f["from"] != f["to"] and f["silenced_at"] == pytest.approx(4.0)
    assert 0 < f["seconds"] <= 1.0 + 0.5
    assert f["from"] not in doc["roles"] and doc["roles"][f["to"]] == "genesis"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--silence-genesis", "1"], "--silence-genesis: needs --roles"),
        (["--roles", "--silence-genesis", "-1"], "--silence-genesis: must be >= 0"),
    ],
)
def test_bad_roles_options_exit_2(args: list[str], message: str) -> None:
    """Bad --roles options are one-line errors with exit status 2."""
    out = run("cluster", "--fast", "--duration", "0.1", *args)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
