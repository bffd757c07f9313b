// The dashboard: wires the event stream and a few polled reads to the views, and redraws
// on animation frames only what changed. Works for one cell (`up --serve`) and for a cluster
// (`cluster --serve`, detected by `GET /cluster` answering 200).
// Rule: the only module that touches the page's elements by id; views draw, modules parse.

import { fmt, request, type HistoryPoint, type ResonancePublic, type StreamMessage, type Tick, type VerifyPublic } from "./api";
import { parseCluster, type ClusterView } from "./cluster";
import { EventStream, type ConnectionState } from "./stream";
import { COLORS } from "./views/canvas";
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
  private dirty = new Set<string>(["phase", "cells", "cluster", "heat"]);
  private lastT: number | null = null;
  private phaseT: number | null = null;
  private picked = 0;
  mode: "cell" | "cluster" = "cell";

  tick(msg: StreamMessage): void {
    if (msg.type === "cluster.tick") return this.clusterTick(parseCluster(msg.data));
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

  clusterTick(view: ClusterView): void {
    this.phase.set(view.members.map((m) => m.phase), view.members.map((m) => m.id));
    this.cluster.push(view.t, [view.c]);
    el("band").textContent = view.band;
    el("band").dataset["band"] = view.band;
    el("c-now").textContent = fmt(view.c, 3);
    el("t-global").textContent = view.tGlobal === null ? "–" : `${fmt(view.tGlobal, 2)} s`;
    el("rejected").textContent =
      Object.entries(view.rejected).map(([k, v]) => `${k} ${v}`).join(" · ") || "none";
    this.pickList(view);
    const m = view.members[this.picked];
    if (m !== undefined) this.cells.push(view.t, [m.master, m.emissary, m.sync], m.collapsed);
    for (const v of ["phase", "cluster", "cells"]) this.dirty.add(v);
  }

  private pickList(view: ClusterView): void {
    const pick = el<HTMLSelectElement>("cell-pick");
    if (pick.options.length === view.members.length) return;
    pick.replaceChildren(...view.members.map((m, i) => new Option(m.id, String(i))));
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
    for (const p of answer.body?.points ?? []) this.cells.push(p.t, [p.master, p.emissary, p.sync]);
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
  }

  frame(): void {
    if (this.phase.step()) this.dirty.add("phase");
    if (this.dirty.has("phase")) this.phase.draw();
    if (this.dirty.has("cells")) this.cells.draw();
    if (this.dirty.has("cluster") && this.mode === "cluster") this.cluster.draw();
    if (this.dirty.has("heat")) this.heat.draw();
    this.dirty.clear();
  }

  redrawAll(): void {
    for (const v of ["phase", "cells", "cluster", "heat"]) this.dirty.add(v);
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

async function main(): Promise<void> {
  const board = new Dashboard();
  wireWriteForm(el<HTMLFormElement>("write"), el("write-result"));
  const node = await request<{ name: string; running: boolean }>("/node");
  el("node-name").textContent = node.body ? `${node.body.name}${node.body.running ? "" : " (stopped, read-only)"}` : "–";
  // Ask the schema, not GET /cluster: a 404 would show as an error in the browser's console.
  const schema = await request<{ paths: Record<string, unknown> }>("/openapi.json");
  const clustered = schema.body !== null && "/api/v1/cluster" in schema.body.paths;
  const cluster = clustered ? await request<unknown>("/cluster") : null;
  board.mode = cluster?.status === 200 ? "cluster" : "cell";
  document.body.dataset["mode"] = board.mode;
  const types = ["tick", "collapse"];
  if (board.mode === "cluster") {
    types.push("cluster.tick");
    board.clusterTick(parseCluster(cluster?.body));
  } else {
    await board.seedHistory();
    every(250, () => board.cellPhase());
  }
  const stream = new EventStream(types, {
    message: (msg) => board.tick(msg),
    state: (state, detail) => board.connection(state, detail),
    resumed: (replayed, reconnects, since) => board.resumed(replayed, reconnects, since),
  });
  stream.start();
  every(5000, () => board.resonance());
  every(10000, () => board.witness());
  window.addEventListener("resize", () => board.redrawAll());
  const loop = (): void => {
    board.frame();
    window.requestAnimationFrame(loop);
  };
  window.requestAnimationFrame(loop);
}

void main();
