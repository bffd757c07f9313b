// The phase circle: one dot per cell at its phase θ (cycles; angle 2πθ, 0 at the top,
// clockwise), and the mean resultant as an arrow whose length is the order parameter R.
// Dots glide toward their newest phase along the shorter arc, so the circle moves smoothly
// between ticks. Rule: phases in, pixels out; no I/O.

import { COLORS, cellColor, fit } from "./canvas";

/** The signed shortest turn from a to b, in cycles (DESIGN.md §3 wrap). */
export function wrap(x: number): number {
  return ((((x + 0.5) % 1) + 1) % 1) - 0.5;
}

export class PhaseCircle {
  private shown: number[] = [];
  private target: number[] = [];
  private labels: string[] = [];

  constructor(private readonly canvas: HTMLCanvasElement) {}

  /** New phases (cycles), one per cell, in a stable order. */
  set(phases: readonly number[], labels: readonly string[]): void {
    if (phases.length !== this.shown.length) this.shown = phases.slice();
    this.target = phases.slice();
    this.labels = labels.slice();
  }

  /** Step the dots toward their targets; true while any dot still moves. */
  step(fraction = 0.25): boolean {
    let moving = false;
    for (let i = 0; i < this.target.length; i++) {
      const d = wrap((this.target[i] ?? 0) - (this.shown[i] ?? 0));
      if (Math.abs(d) > 1e-4) moving = true;
      this.shown[i] = (((this.shown[i] ?? 0) + d * fraction) % 1 + 1) % 1;
    }
    return moving;
  }

  /** Order parameter R and mean phase (cycles) of the shown dots. */
  resultant(): { r: number; mean: number } {
    let x = 0;
    let y = 0;
    for (const p of this.shown) {
      x += Math.cos(2 * Math.PI * p);
      y += Math.sin(2 * Math.PI * p);
    }
    const n = Math.max(1, this.shown.length);
    return { r: Math.hypot(x, y) / n, mean: Math.atan2(y, x) / (2 * Math.PI) };
  }

  draw(): void {
    const { ctx, w, h } = fit(this.canvas);
    const cx = w / 2;
    const cy = h / 2;
    const radius = Math.max(10, Math.min(w, h) / 2 - 18);
    ctx.strokeStyle = COLORS.grid;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(cx, cy, radius, 0, 2 * Math.PI);
    ctx.stroke();
    const at = (p: number, r: number): [number, number] => [
      cx + r * Math.sin(2 * Math.PI * p),
      cy - r * Math.cos(2 * Math.PI * p),
    ];
    const { r, mean } = this.resultant();
    if (this.shown.length > 0) {
      const [ex, ey] = at(mean, radius * r);
      ctx.strokeStyle = COLORS.accent;
      ctx.lineWidth = 3;
      ctx.beginPath();
      ctx.moveTo(cx, cy);
      ctx.lineTo(ex, ey);
      ctx.stroke();
    }
    const n = this.shown.length;
    const dot = n > 32 ? 4 : 7;
    this.shown.forEach((p, i) => {
      const [x, y] = at(p, radius);
      ctx.fillStyle = cellColor(i, n);
      ctx.beginPath();
      ctx.arc(x, y, dot, 0, 2 * Math.PI);
      ctx.fill();
    });
    ctx.fillStyle = COLORS.text;
    ctx.font = "12px system-ui, sans-serif";
    ctx.fillText(`${n} cell${n === 1 ? "" : "s"} · R ${r.toFixed(3)}`, 8, 16);
    if (n === 1 && this.labels[0]) ctx.fillText(this.labels[0], 8, h - 8);
  }
}
