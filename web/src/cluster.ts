// The cluster as `GET /cluster` (its `frame`) and each `cluster.tick` event (its data) carry
// it (docs/api.md, "A cluster"): per cell its phase θ (cycles) and, for full cells, Master,
// Emissary and Sync |T|² and the last outcome; C_cluster, R, the band, T_global (complex, as
// [re, im]) and rejected packets by reason. Rule: parsing only; unknown fields are ignored.

export interface Member {
  name: string;
  theta: number;
  /** null for a CPS-only cell (no transducers). */
  master: number | null;
  emissary: number | null;
  sync: number | null;
  collapsed: boolean;
}

export interface Frame {
  tick: number;
  time: number;
  c: number;
  r: number;
  band: string;
  tGlobal: [number, number];
  rejected: number;
  byReason: Record<string, number>;
  members: Member[];
}

function num(value: unknown, fallback = 0): number {
  return typeof value === "number" && Number.isFinite(value) ? value : fallback;
}

function orNull(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
}

function member(raw: unknown, index: number): Member {
  const m = record(raw);
  return {
    name: String(m["name"] ?? index),
    theta: num(m["theta"]),
    master: orNull(m["master"]),
    emissary: orNull(m["emissary"]),
    sync: orNull(m["sync"]),
    collapsed: m["outcome"] === "collapse",
  };
}

/** One frame (a `cluster.tick` event's data, or the `frame` of `GET /cluster`); null if absent. */
export function parseFrame(body: unknown): Frame | null {
  if (typeof body !== "object" || body === null) return null;
  const b = record(body);
  const byReason: Record<string, number> = {};
  for (const [k, v] of Object.entries(record(b["rejected_by_reason"]))) byReason[k] = num(v);
  const tg = Array.isArray(b["t_global"]) ? b["t_global"] : [];
  return {
    tick: num(b["tick"]),
    time: num(b["time"]),
    c: num(b["c_cluster"]),
    r: num(b["r"]),
    band: String(b["band"] ?? "–"),
    tGlobal: [num(tg[0]), num(tg[1])],
    rejected: num(b["rejected"]),
    byReason,
    members: Array.isArray(b["members"]) ? b["members"].map(member) : [],
  };
}
