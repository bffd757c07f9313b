// The cluster's view of the world: `GET /cluster` and the `cluster.tick` event carry the same
// body (docs/api.md): members with their phase θ (cycles) and coherence, C_cluster, its band,
// T_global and rejected packets by reason. Rule: parsing only; unknown fields are ignored.

export interface Member {
  id: string;
  phase: number;
  master: number;
  emissary: number;
  sync: number;
  collapsed: boolean;
}

export interface ClusterView {
  t: number;
  members: Member[];
  c: number;
  band: string;
  tGlobal: number | null;
  rejected: Record<string, number>;
}

function num(value: unknown, fallback = 0): number {
  return typeof value === "number" && Number.isFinite(value) ? value : fallback;
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
}

function member(raw: unknown, index: number): Member {
  const m = record(raw);
  const coh = record(m["coherence"]);
  return {
    id: String(m["id"] ?? m["name"] ?? m["node_id"] ?? index),
    phase: num(m["phase"] ?? m["theta"]),
    master: num(coh["master"] ?? m["master"]),
    emissary: num(coh["emissary"] ?? m["emissary"]),
    sync: num(coh["sync"] ?? m["sync"]),
    collapsed: (m["outcome"] ?? coh["outcome"]) === "collapse",
  };
}

/** The cluster body of `GET /cluster` or of a `cluster.tick` event's data. */
export function parseCluster(body: unknown): ClusterView {
  const b = record(body);
  const members = Array.isArray(b["members"]) ? b["members"].map(member) : [];
  const rejected: Record<string, number> = {};
  for (const [k, v] of Object.entries(record(b["rejected"]))) rejected[k] = num(v);
  const tGlobal = b["t_global"] ?? b["T_global"];
  return {
    t: num(b["t"] ?? b["time"]),
    members,
    c: num(b["c_cluster"] ?? b["C_cluster"] ?? b["coherence"]),
    band: String(b["band"] ?? "–"),
    tGlobal: typeof tGlobal === "number" ? tGlobal : null,
    rejected,
  };
}
