// What the cluster's glyphs, roles, lifecycle and proposals are, as the page knows them: a
// snapshot (GET /cluster/glyphs, /cluster/roles, /cluster/proposals) then the typed events
// of /cluster/events (glyph.*, role.*, lifecycle.changed, proposal.*; docs/api.md) applied to
// it. Rule: state and parsing only; no DOM, no I/O. Unknown fields are ignored.

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
}

function num(value: unknown, fallback = 0): number {
  return typeof value === "number" && Number.isFinite(value) ? value : fallback;
}

function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}

export interface GlyphRow {
  id: string;
  owner: string;
  kind: string;
  energy: number;
}

/** A glyph on its way from one owner to another, since `start` (ms, page clock). */
export interface Move {
  id: string;
  from: string;
  to: string;
  start: number;
}

/** How long (ms) a migration's dot travels from the old owner to the new one. */
export const MOVE_MS = 1200;

export class GlyphState {
  readonly glyphs = new Map<string, GlyphRow>();
  moves: Move[] = [];
  migrations = 0;
  fires = 0;
  ended = 0;
  lastMove: Move | null = null;

  /** Replace what is known with the glyph list of `GET /cluster/glyphs`. */
  snapshot(body: unknown): void {
    this.glyphs.clear();
    const rows = record(body)["glyphs"];
    for (const raw of Array.isArray(rows) ? rows : []) this.put(record(raw));
  }

  private put(g: Record<string, unknown>): void {
    const id = str(g["id"]);
    if (id) this.glyphs.set(id, { id, owner: str(g["owner"]), kind: str(g["kind"]), energy: num(g["energy"]) });
  }

  /** Apply one stream event; true if it was a glyph event. `now` is the page clock (ms). */
  apply(type: string, data: Record<string, unknown>, now: number): boolean {
    switch (type) {
      case "glyph.submitted":
        this.put(data);
        return true;
      case "glyph.migrated": {
        const id = str(data["id"]);
        const move = { id, from: str(data["from"]), to: str(data["to"]), start: now };
        this.put({ ...data, owner: move.to });
        this.moves.push(move);
        this.lastMove = move;
        this.migrations += 1;
        return true;
      }
      case "glyph.ended":
        this.glyphs.delete(str(data["id"]));
        this.ended += 1;
        return true;
      case "glyph.fired":
        this.fires += num(data["fires"]);
        return true;
      default:
        return false;
    }
  }

  /** Drop finished moves; true while one is still travelling. */
  travelling(now: number): boolean {
    this.moves = this.moves.filter((m) => now - m.start < MOVE_MS);
    return this.moves.length > 0;
  }

  /** Per cell: its glyphs (by id) and their summed energy. */
  byOwner(): Map<string, { ids: string[]; energy: number }> {
    const out = new Map<string, { ids: string[]; energy: number }>();
    for (const g of [...this.glyphs.values()].sort((a, b) => (a.id < b.id ? -1 : 1))) {
      const row = out.get(g.owner) ?? { ids: [], energy: 0 };
      row.ids.push(g.id);
      row.energy += g.energy;
      out.set(g.owner, row);
    }
    return out;
  }
}

export interface Condition {
  name: string;
  stage: string;
  value: number | null;
  threshold: number;
  met: boolean;
}

export interface ProposalRow {
  id: string;
  kind: string;
  what: string;
  status: string;
  yes: number;
  no: number;
  eligible: string[];
  needed: number;
  voted: string[];
  /** The tick it opened on (-1: from a snapshot). Only operators' proposals are listed; one
   * decided in the tick it opened (every vote in at once) stays listed as decided. */
  opened: number;
}

/** What the cluster proposes by itself (role plans, the Genesis' intents): counted, never
 * listed — over NATS they take several ticks to decide, so the tick alone cannot tell. */
export const AUTOMATIC_KINDS: ReadonlySet<string> = new Set(["roles", "intent"]);

/** Yes votes a proposal with `eligible` voters needs (yes / eligible ≥ 1/φ), as the server. */
export function needed(eligible: number): number {
  return Math.max(1, Math.ceil((eligible * 2) / (1 + Math.sqrt(5)) - 1e-12));
}

/** Decided proposals listed at most (the oldest go first). */
export const KEEP_DECIDED = 8;

export class RoleState {
  readonly roles = new Map<string, string | null>();
  stage = "–";
  conditions: Condition[] = [];
  readonly proposals = new Map<string, ProposalRow>();
  /** Automatic proposals (decided the tick they opened) by outcome. */
  readonly automatic = new Map<string, number>();

  /** `GET /cluster/roles`: every cell's role, the lifecycle and its conditions. */
  snapshotRoles(body: unknown): void {
    const b = record(body);
    this.roles.clear();
    for (const [cell, raw] of Object.entries(record(b["cells"]))) {
      const role = record(raw)["role"];
      this.roles.set(cell, typeof role === "string" ? role : null);
    }
    this.setLifecycle(b["lifecycle"], b["conditions"]);
  }

  /** `GET /cluster/proposals?operator=true`: the operators' proposals, newest first. */
  snapshotProposals(body: unknown): void {
    const rows = record(body)["proposals"];
    for (const raw of Array.isArray(rows) ? rows : []) {
      const p = record(raw);
      const votes = Array.isArray(p["votes"]) ? p["votes"].map((v) => str(record(v)["voter"])) : [];
      const eligible = Array.isArray(p["eligible"]) ? p["eligible"].map(str) : [];
      this.proposals.set(str(p["id"]), {
        id: str(p["id"]),
        kind: str(p["kind"]),
        what: describe(record(p["payload"])),
        status: str(p["status"]),
        yes: num(p["yes"]),
        no: num(p["no"]),
        eligible,
        needed: num(p["needed"], needed(eligible.length)),
        voted: votes,
        opened: -1,
      });
    }
    this.trim();
  }

  private setLifecycle(stage: unknown, conditions: unknown): void {
    this.stage = str(stage) || "–";
    this.conditions = Object.entries(record(conditions)).map(([name, raw]) => {
      const c = record(raw);
      return {
        name,
        stage: str(c["stage"]),
        value: typeof c["value"] === "number" ? c["value"] : null,
        threshold: num(c["threshold"]),
        met: c["met"] === true,
      };
    });
  }

  /** Apply one stream event of tick `seq`; true if it was a role, lifecycle or proposal one. */
  apply(type: string, seq: number, data: Record<string, unknown>): boolean {
    switch (type) {
      case "role.assigned":
        this.roles.set(str(data["cell"]), str(data["role"]) || null);
        return true;
      case "role.changed":
        this.roles.set(str(data["cell"]), str(data["to"]) || null);
        return true;
      case "lifecycle.changed":
        this.setLifecycle(data["stage"], data["conditions"]);
        return true;
      case "proposal.opened":
        this.opened(seq, data);
        return true;
      case "proposal.vote":
        this.voted(data);
        return true;
      case "proposal.decided":
        this.decided(data);
        return true;
      default:
        return false;
    }
  }

  private opened(seq: number, data: Record<string, unknown>): void {
    const id = str(data["id"]);
    if (this.proposals.has(id) || AUTOMATIC_KINDS.has(str(data["kind"]))) return;
    this.proposals.set(id, {
      id,
      kind: str(data["kind"]),
      what: "",
      status: "open",
      yes: 0,
      no: 0,
      eligible: [],
      needed: 1,
      voted: [],
      opened: seq,
    });
  }

  private voted(data: Record<string, unknown>): void {
    const p = this.proposals.get(str(data["id"]));
    if (p === undefined) return;
    p.yes = num(data["yes"]);
    p.no = num(data["no"]);
    const votes = Array.isArray(data["votes"]) ? data["votes"] : [];
    for (const v of votes) p.voted.push(str(record(v)["voter"]));
    if (p.eligible.length === 0) p.needed = needed(num(data["eligible"]));
  }

  private decided(data: Record<string, unknown>): void {
    const id = str(data["id"]);
    const outcome = str(data["outcome"]);
    const p = this.proposals.get(id);
    if (p === undefined) {
      // never listed: an automatic kind (opened() skipped it), or opened before the page
      this.automatic.set(outcome, (this.automatic.get(outcome) ?? 0) + 1);
      return;
    }
    p.status = outcome;
    p.yes = num(data["yes"], p.yes);
    this.trim();
  }

  /** Keep every open proposal and the newest KEEP_DECIDED decided ones. */
  private trim(): void {
    const decided = [...this.proposals.values()].filter((p) => p.status !== "open");
    for (const p of decided.slice(0, Math.max(0, decided.length - KEEP_DECIDED))) this.proposals.delete(p.id);
  }

  /** The Validators that may still vote on `p` (its eligible voters minus those who voted). */
  voters(p: ProposalRow): string[] {
    const eligible = p.eligible.length > 0 ? p.eligible : [...this.roles].filter(([, r]) => r === "validator").map(([c]) => c);
    return eligible.filter((c) => !p.voted.includes(c));
  }
}

/** A proposal's payload in a few words: a command's text, a glyph's id and kind. */
export function describe(payload: Record<string, unknown>): string {
  const what = str(payload["what"]);
  const glyph = record(payload["glyph"]);
  if (what === "glyph.submit") return `run glyph ${str(glyph["id"])} (${str(glyph["kind"])})`;
  if (what === "glyph.cancel") return `cancel glyph ${str(payload["glyph_id"])}`;
  return what;
}
