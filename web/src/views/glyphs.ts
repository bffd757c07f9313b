// The glyph ring: every cell at a fixed place on a ring (in the frame's order, cell 0 at the
// top, coloured as on the phase circle; not at its phase, which would stack every cell of a
// locked cluster on one point), each glyph a small dot orbiting its owner cell, a migration's
// dot travelling along the chord from the old owner to the new one (MOVE_MS).
// Rule: cells, glyphs and moves in, pixels out; no I/O.

import { MOVE_MS, type GlyphState } from "../governance";
import { COLORS, cellColor, fit } from "./canvas";

/** Where a travelling dot is, a fraction `t` (0..1) of the way, eased in and out. */
export function along(from: [number, number], to: [number, number], t: number): [number, number] {
  const k = Math.min(1, Math.max(0, t));
  const e = k * k * (3 - 2 * k);
  return [from[0] + (to[0] - from[0]) * e, from[1] + (to[1] - from[1]) * e];
}

export class GlyphCircle {
  private names: string[] = [];

  constructor(private readonly canvas: HTMLCanvasElement) {}

  /** The cells of the newest frame, in a stable order; true if they changed. */
  cells(names: readonly string[]): boolean {
    if (names.length === this.names.length && names.every((n, i) => n === this.names[i])) return false;
    this.names = names.slice();
    return true;
  }

  draw(state: GlyphState, now: number): void {
    const { ctx, w, h } = fit(this.canvas);
    const cx = w / 2;
    const cy = h / 2;
    const radius = Math.max(10, Math.min(w, h) / 2 - 26);
    ctx.strokeStyle = COLORS.grid;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.arc(cx, cy, radius, 0, 2 * Math.PI);
    ctx.stroke();
    const n = this.names.length;
    const where = new Map<string, [number, number]>();
    this.names.forEach((name, i) => {
      const p = i / Math.max(1, n);
      const at: [number, number] = [cx + radius * Math.sin(2 * Math.PI * p), cy - radius * Math.cos(2 * Math.PI * p)];
      where.set(name, at);
      ctx.strokeStyle = cellColor(i, n);
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(at[0], at[1], n > 32 ? 5 : 8, 0, 2 * Math.PI);
      ctx.stroke();
      if (n <= 16) {
        ctx.fillStyle = COLORS.text;
        ctx.font = "10px system-ui, sans-serif";
        const label = name.replace(/^cell-0*/, "") || "0";
        ctx.fillText(label, at[0] + (at[0] >= cx ? 10 : -10 - ctx.measureText(label).width), at[1] + 4);
      }
    });
    const moving = new Set(state.moves.map((m) => m.id));
    const orbit = n > 32 ? 9 : 14;
    for (const [owner, row] of state.byOwner()) {
      const at = where.get(owner);
      if (at === undefined) continue;
      const shown = row.ids.filter((id) => !moving.has(id));
      shown.forEach((id, k) => {
        const a = (2 * Math.PI * k) / Math.max(1, shown.length);
        ctx.fillStyle = id.startsWith("task-") ? COLORS.text : COLORS.emissary;
        ctx.beginPath();
        ctx.arc(at[0] + orbit * Math.cos(a), at[1] + orbit * Math.sin(a), 3, 0, 2 * Math.PI);
        ctx.fill();
      });
    }
    for (const m of state.moves) {
      const from = where.get(m.from);
      const to = where.get(m.to);
      if (from === undefined || to === undefined) continue;
      const [x, y] = along(from, to, (now - m.start) / MOVE_MS);
      ctx.strokeStyle = COLORS.accent;
      ctx.setLineDash([3, 4]);
      ctx.beginPath();
      ctx.moveTo(from[0], from[1]);
      ctx.lineTo(to[0], to[1]);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = COLORS.accent;
      ctx.beginPath();
      ctx.arc(x, y, 5, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.fillStyle = COLORS.text;
    ctx.font = "12px system-ui, sans-serif";
    ctx.fillText(`${state.glyphs.size} glyph${state.glyphs.size === 1 ? "" : "s"} · ${state.migrations} migration(s)`, 8, 16);
  }
}
