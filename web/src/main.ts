// The dashboard: wires the event streams and a few polled reads to the views, and redraws
// on animation frames only what changed. What the server offers is read from its OpenAPI
// paths: a cell (`up --serve`: /node, /events, /resonance, /witness), a cluster (`cluster
// --serve`: /cluster, /cluster/events; with --cells full /cluster/glyphs, with --roles
// /cluster/roles and /cluster/proposals), or both; the page shows the views it can feed.
// Rule: the only module that touches the page's elements by id; views draw, modules parse.

import { fmt, request, type HistoryPoint, type ResonancePublic, type StreamMessage, type Tick, type VerifyPublic } from "./api";
import { parseFrame, type Frame } from "./cluster";
import { GlyphState, RoleState } from "./governance";
import { renderGlyphs, renderProposals, renderRoles, wireVotes } from "./panels";
import { EventStream, type ConnectionState } from "./stream";
import { COLORS } from "./views/canvas";
import { GlyphCircle } from "./views/glyphs";
import { Heatmap } from "./views/heatmap";
import { PhaseCircle } from "./views/phase";
import { Timeline } from "./views/timeline";
import { wireWriteForm } from "./write";

function el<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`the page has no #${id}`);
  return found as T;
}

const CELL_LINES = [
  { name: "Master", color: COLORS.master },
  { name: "Emissary", color: COLORS.emissary },
  { name: "Sync", color: COLORS.sync },
];

class Dashboard {
  readonly phase = new PhaseCircle(el<HTMLCanvasElement>("phase"));
  readonly cells = new Timeline(el<HTMLCanvasElement>("coherence"), CELL_LINES);
  readonly cluster = new Timeline(
    el<HTMLCanvasElement>("cluster-c"),
    [{ name: "C_cluster", color: COLORS.accent }],
    [0.3, 0.6, 0.75],
  );
  readonly heat = new Heatmap(el<HTMLCanvasElement>("resonance"));
  readonly glyphCircle = new GlyphCircle(el<HTMLCanvasElement>("glyphs"));
  readonly glyphs = new GlyphState();
  readonly roles = new RoleState();
  private dirty = new Set<string>(["phase", "cells", "cluster", "heat"]);
  private lastTick = -1;
  private fetching = false;
  private readonly looked = new Set<string>();
  private lastT: number | null = null;
  private phaseT: number | null = null;
  private picked = 0;
  mode: "cell" | "cluster" = "cell";
  /** The cluster's name and topology for the header, whose cell count follows each frame. */
  header: { name: string; topology: string } | null = null;
  hasCell = false;

  /** A cell event (tick or collapse) from /events. */
  cellEvent(msg: StreamMessage): void {
    el("seq").textContent = String(msg.seq);
    if (msg.type !== "tick") return;
    const t = msg.data as unknown as Tick;
    this.lastT = t.t;
    el("t-now").textContent = `${fmt(t.t, 2)} s`;
    el("outcome").textContent = t.outcome;
    if (this.mode === "cell") {
      this.cells.push(t.t, [t.master, t.emissary, t.sync], t.outcome === "collapse");
      this.dirty.add("cells");
    }
  }

  /** One message of /cluster/events: a frame, or a glyph, role, lifecycle or proposal event. */
  clusterEvent(msg: StreamMessage): void {
    if (msg.type === "cluster.tick") {
      this.frameOf(parseFrame(msg.data));
    } else if (this.glyphs.apply(msg.type, msg.data, performance.now())) {
      this.dirty.add("glyphs").add("glyph-list");
      const m = this.glyphs.lastMove;
      if (msg.type === "glyph.migrated" && m !== null) el("glyph-move").textContent = `${m.id}: ${m.from} → ${m.to} at tick ${msg.seq}`;
    } else if (this.roles.apply(msg.type, msg.seq, msg.data)) {
      this.dirty.add(msg.type.startsWith("proposal.") ? "proposals" : "roles");
    }
  }

  /** The glyphs, roles and operators' proposals now (at the start, after a reconnect). */
  async governance(glyphs: boolean, roles: boolean): Promise<void> {
    if (glyphs) {
      const answer = await request<unknown>("/cluster/glyphs");
      if (answer.body !== null) this.glyphs.snapshot(answer.body);
      this.dirty.add("glyphs").add("glyph-list");
    }
    if (roles) {
      const r = await request<unknown>("/cluster/roles");
      if (r.body !== null) this.roles.snapshotRoles(r.body);
      const writable = (r.body as { writable?: unknown } | null)?.writable !== false;
      document.body.dataset["writable"] = String(writable);
      if (!writable) {
        el("vote-result").textContent =
          "read-only view (a witness): propose and vote through a node --roles --serve";
      }
      await this.operatorProposals();
      this.dirty.add("roles").add("proposals");
    }
  }

  private async operatorProposals(): Promise<void> {
    const p = await request<unknown>("/cluster/proposals?operator=true&limit=20");
    if (p.body !== null) this.roles.snapshotProposals(p.body);
    this.dirty.add("proposals");
  }

  /** An open proposal known only from its event (no voters yet) that outlived its tick may
   * be an operator's: read the operators' proposals (once per such proposal) for its text
   * and eligible voters. */
  private details(): void {
    if (this.fetching) return;
    const missing = [...this.roles.proposals.values()].filter(
      (p) => p.status === "open" && p.eligible.length === 0 && p.opened < this.lastTick && !this.looked.has(p.id),
    );
    if (missing.length === 0) return;
    for (const p of missing) this.looked.add(p.id);
    this.fetching = true;
    void this.operatorProposals().finally(() => {
      this.fetching = false;
    });
  }

  /** One cluster frame (a cluster.tick event, or GET /cluster's newest). */
  frameOf(frame: Frame | null): void {
    if (frame === null) return;
    this.lastTick = frame.tick;
    if (this.header !== null) {
      const { name, topology } = this.header;
      el("node-name").textContent = `cluster ${name} · ${frame.members.length} cells · ${topology}`;
    }
    this.details();
    this.phase.set(frame.members.map((m) => m.theta), frame.members.map((m) => m.name));
    if (this.glyphCircle.cells(frame.members.map((m) => m.name))) this.dirty.add("glyphs");
    this.cluster.push(frame.time, [frame.c]);
    el("band").textContent = frame.band;
    el("band").dataset["band"] = frame.band;
    el("c-now").textContent = `${fmt(frame.c, 3)} (R ${fmt(frame.r, 3)}) at tick ${frame.tick}`;
    const [re, im] = frame.tGlobal;
    el("t-global").textContent =
      `|T|² ${fmt(re * re + im * im, 3)} · arg ${fmt(Math.atan2(im, re), 2)} rad`;
    const reasons = Object.entries(frame.byReason).map(([k, v]) => `${k} ${v}`);
    el("rejected").textContent = `${frame.rejected}${reasons.length ? ` (${reasons.join(", ")})` : ""}`;
    this.pickList(frame);
    const m = frame.members[this.picked];
    if (m !== undefined && m.master !== null) {
      this.cells.push(frame.time, [m.master, m.emissary ?? 0, m.sync ?? 0], m.collapsed);
      el("t-now").textContent = `${fmt(frame.time, 2)} s`;
      el("outcome").textContent = m.collapsed ? "collapse" : "dissipate";
    } else if (m !== undefined) {
      el("cells-note").textContent =
        "CPS-only cells have no transducers: run the cluster with --cells full to see them";
    }
    for (const v of ["phase", "cluster", "cells"]) this.dirty.add(v);
  }

  private pickList(frame: Frame): void {
    if (this.mode !== "cluster") return;
    const pick = el<HTMLSelectElement>("cell-pick");
    if (pick.options.length === frame.members.length) return;
    pick.replaceChildren(...frame.members.map((m, i) => new Option(m.name, String(i))));
    pick.hidden = false;
    pick.onchange = () => {
      this.picked = Number(pick.value);
      this.cells.clear();
    };
  }

  /** One cell: the dot is arg(T_sync) of the newest stored decision (history's `phase`). */
  async cellPhase(): Promise<void> {
    if (this.lastT === null || this.lastT === this.phaseT) return;
    const t = this.lastT;
    const answer = await request<{ points: HistoryPoint[] }>(
      `/coherence/history?start=${t - 1}&end=${t}&points=20`,
    );
    const newest = answer.body?.points[answer.body.points.length - 1];
    if (newest === undefined) return;
    this.phaseT = t;
    const cycles = (((newest.phase / (2 * Math.PI)) % 1) + 1) % 1;
    this.phase.set([cycles], [`arg T_sync ${fmt(newest.phase, 2)} rad`]);
    this.dirty.add("phase");
  }

  async seedHistory(): Promise<void> {
    const answer = await request<{ points: HistoryPoint[] }>("/coherence/history?points=300");
    const points = answer.body?.points ?? [];
    for (const p of points) this.cells.push(p.t, [p.master, p.emissary, p.sync]);
    const newest = points[points.length - 1];
    if (newest !== undefined) {
      // A stopped cell sends no ticks: its newest stored point is what the page shows.
      const cycles = (((newest.phase / (2 * Math.PI)) % 1) + 1) % 1;
      this.phase.set([cycles], [`arg T_sync ${fmt(newest.phase, 2)} rad`]);
      el("t-now").textContent = `${fmt(newest.t, 2)} s`;
      this.dirty.add("phase");
    }
    this.dirty.add("cells");
  }

  async resonance(): Promise<void> {
    const answer = await request<ResonancePublic>("/resonance");
    const p = answer.body?.peak;
    if (answer.body !== null && p) {
      this.heat.set(answer.body, "");
      el("res-peak").textContent =
        `peak |T̂|² ${fmt(p.power, 3)} at lag ${fmt(p.lag, 2)} s, ω ${fmt(p.omega, 2)} rad/s · ${answer.body.samples} samples`;
    } else {
      const kept = answer.body?.samples;
      const why = kept === undefined ? answer.error?.message : `${kept} recent samples kept`;
      this.heat.set(null, `no map yet: ${why ?? "no answer"}`);
      el("res-peak").textContent = "";
    }
    this.dirty.add("heat");
  }

  async witness(): Promise<void> {
    const answer = await request<VerifyPublic>("/witness/verify");
    const node = el("witness");
    const v = answer.body;
    if (v === null) {
      node.textContent = `unknown (${answer.error?.message ?? "no answer"})`;
      node.dataset["ok"] = "unknown";
    } else if (v.ok) {
      node.textContent = `verified · ${v.checked} records`;
      node.dataset["ok"] = "true";
    } else if (v.integrity !== undefined && v.integrity !== "ok") {
      node.textContent = `DATABASE DAMAGED: ${v.integrity}`;
      node.dataset["ok"] = "false";
    } else {
      node.textContent = `BROKEN at seq ${v.first_bad}: ${v.reason ?? ""}`;
      node.dataset["ok"] = "false";
    }
  }

  connection(state: ConnectionState, detail: string): void {
    const node = el("conn");
    node.dataset["state"] = state;
    node.textContent = state === "live" ? "live" : `${state} (${detail})`;
  }

  resumed(replayed: number, reconnects: number, since: number): void {
    el("resume").textContent =
      `reconnected ${reconnects}× · resumed after seq ${since} · ${replayed} missed record(s) replayed`;
    if (this.hasCell) {
      void this.resonance(); // the polls that failed while the server was away
      void this.witness();
    }
  }

  frame(): void {
    if (this.phase.step()) this.dirty.add("phase");
    if (this.dirty.has("phase")) this.phase.draw();
    if (this.dirty.has("cells")) this.cells.draw();
    if (this.dirty.has("cluster") && this.mode === "cluster") this.cluster.draw();
    if (this.dirty.has("heat")) this.heat.draw();
    this.governanceFrame();
    this.dirty.clear();
  }

  private governanceFrame(): void {
    const now = performance.now();
    if (this.glyphs.travelling(now)) this.dirty.add("glyphs");
    if (document.body.dataset["glyphs"] === "true") {
      if (this.dirty.has("glyphs")) this.glyphCircle.draw(this.glyphs, now);
      if (this.dirty.has("glyph-list")) {
        renderGlyphs(el("glyph-list"), this.glyphs);
        const g = this.glyphs;
        el("glyph-stats").textContent = `${g.glyphs.size} glyph(s) · ${g.migrations} migration(s) · ${g.fires} run(s) · ${g.ended} ended`;
      }
    }
    if (document.body.dataset["roles"] === "true") {
      if (this.dirty.has("roles")) renderRoles(el("roles"), el("lifecycle"), el("conditions"), this.roles);
      if (this.dirty.has("proposals")) renderProposals(el("proposals"), el("proposal-auto"), this.roles);
    }
  }

  redrawAll(): void {
    for (const v of ["phase", "cells", "cluster", "heat", "glyphs"]) this.dirty.add(v);
  }
}

function every(ms: number, job: () => Promise<void>): void {
  let busy = false;
  const run = (): void => {
    if (busy) return;
    busy = true;
    void job().finally(() => {
      busy = false;
    });
  };
  run();
  window.setInterval(run, ms);
}

/** Which resources this server offers, from its OpenAPI paths. */
async function offered(): Promise<{ cell: boolean; cluster: boolean; glyphs: boolean; roles: boolean }> {
  // The schema, not trial requests: a 404 would show as an error in the browser's console.
  const schema = await request<{ paths: Record<string, unknown> }>("/openapi.json");
  const paths = schema.body?.paths ?? {};
  return {
    cell: "/api/v1/node" in paths,
    cluster: "/api/v1/cluster" in paths,
    glyphs: "/api/v1/cluster/glyphs" in paths,
    roles: "/api/v1/cluster/roles" in paths,
  };
}

function streamTo(
  board: Dashboard,
  path: string,
  params: Record<string, string>,
  on: (m: StreamMessage) => void,
  resumed?: () => void,
): void {
  new EventStream(path, params, {
    message: on,
    state: (state, detail) => board.connection(state, detail),
    resumed: (replayed, reconnects, since) => {
      board.resumed(replayed, reconnects, since);
      resumed?.();
    },
  }).start();
}

async function main(): Promise<void> {
  const board = new Dashboard();
  const has = await offered();
  board.mode = has.cluster ? "cluster" : "cell";
  document.body.dataset["mode"] = board.mode;
  document.body.dataset["cell"] = String(has.cell);
  document.body.dataset["glyphs"] = String(has.glyphs);
  document.body.dataset["roles"] = String(has.roles);
  board.hasCell = has.cell;
  if (has.cell) {
    wireWriteForm(el<HTMLFormElement>("write"), el("write-result"));
    const node = await request<{ name: string; running: boolean }>("/node");
    const b = node.body;
    el("node-name").textContent = b ? `${b.name}${b.running ? "" : " (stopped, read-only)"}` : "–";
    streamTo(board, "/events", { types: "tick,collapse" }, (m) => board.cellEvent(m));
    every(5000, () => board.resonance());
    every(10000, () => board.witness());
  }
  if (has.cluster) {
    const now = await request<{ cluster: { name: string; cells: number; topology: string }; frame: unknown }>("/cluster");
    const c = now.body?.cluster;
    if (c) {
      el("node-name").textContent = `cluster ${c.name} · ${c.cells} cells · ${c.topology}`;
      board.header = { name: c.name, topology: c.topology };
    }
    const first = parseFrame(now.body?.frame);
    if (first !== null) {
      const since = Math.max(-1, first.tick - 600);
      const past = await request<{ points: { time: number; c_cluster: number }[] }>(
        `/cluster/history?since=${since}&limit=600`,
      );
      for (const p of past.body?.points ?? []) board.cluster.push(p.time, [p.c_cluster]);
    }
    board.frameOf(first);
    if (has.roles) wireVotes(el("proposals"), el<HTMLInputElement>("vote-token"), el("vote-result"));
    await board.governance(has.glyphs, has.roles);
    // A tick's events may have been received in part when the connection was lost: the
    // snapshots after a resume make the glyph and role views whole again.
    const types = ["cluster.tick"];
    if (has.glyphs) types.push("glyph.submitted", "glyph.migrated", "glyph.ended", "glyph.fired");
    if (has.roles) types.push("role.assigned", "role.changed", "lifecycle.changed", "proposal.opened", "proposal.vote", "proposal.decided");
    streamTo(board, "/cluster/events", { types: types.join(",") }, (m) => board.clusterEvent(m), () => {
      void board.governance(has.glyphs, has.roles);
    });
  } else if (has.cell) {
    await board.seedHistory();
    every(250, () => board.cellPhase());
  }
  window.addEventListener("resize", () => board.redrawAll());
  const loop = (): void => {
    board.frame();
    window.requestAnimationFrame(loop);
  };
  window.requestAnimationFrame(loop);
}

void main();
