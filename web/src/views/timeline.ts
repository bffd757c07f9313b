// A time-series chart on a canvas: lines over stream time, y in [0, 1], optional shaded spans
// (collapses) and horizontal guides (band thresholds). Keeps at most `capacity` points.
// Rule: data in, pixels out; no I/O.

import { COLORS, fit } from "./canvas";

export interface Line {
  name: string;
  color: string;
}

export class Timeline {
  private times: number[] = [];
  private values: number[][] = [];
  private shaded: boolean[] = [];

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly lines: readonly Line[],
    private readonly guides: readonly number[] = [],
    private readonly capacity = 600,
  ) {}

  /** Append one point at stream time `t` (older points than the newest are ignored). */
  push(t: number, values: readonly number[], shade = false): void {
    const last = this.times[this.times.length - 1];
    if (last !== undefined && t < last) return;
    this.times.push(t);
    this.values.push(values.slice());
    this.shaded.push(shade);
    if (this.times.length > this.capacity) {
      this.times.shift();
      this.values.shift();
      this.shaded.shift();
    }
  }

  get size(): number {
    return this.times.length;
  }

  clear(): void {
    this.times = [];
    this.values = [];
    this.shaded = [];
  }

  draw(): void {
    const { ctx, w, h } = fit(this.canvas);
    const pad = { l: 30, r: 8, t: 18, b: 16 };
    const pw = w - pad.l - pad.r;
    const ph = h - pad.t - pad.b;
    const t0 = this.times[0] ?? 0;
    const t1 = this.times[this.times.length - 1] ?? 1;
    const span = Math.max(1e-9, t1 - t0);
    const x = (t: number): number => pad.l + ((t - t0) / span) * pw;
    const y = (v: number): number => pad.t + (1 - Math.min(1, Math.max(0, v))) * ph;
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = COLORS.text;
    ctx.strokeStyle = COLORS.grid;
    ctx.lineWidth = 1;
    for (const g of [0, 0.5, 1, ...this.guides]) {
      ctx.beginPath();
      ctx.moveTo(pad.l, y(g));
      ctx.lineTo(w - pad.r, y(g));
      ctx.stroke();
      ctx.fillText(g.toFixed(2), 2, y(g) + 4);
    }
    const step = this.times.length > 1 ? pw / (this.times.length - 1) : pw;
    ctx.fillStyle = COLORS.collapse;
    this.shaded.forEach((on, i) => {
      if (on) ctx.fillRect(x(this.times[i] ?? 0) - step / 2, pad.t, Math.max(2, step), ph);
    });
    this.lines.forEach((line, k) => {
      ctx.strokeStyle = line.color;
      ctx.lineWidth = 1.6;
      ctx.beginPath();
      this.times.forEach((t, i) => {
        const v = this.values[i]?.[k] ?? 0;
        if (i === 0) ctx.moveTo(x(t), y(v));
        else ctx.lineTo(x(t), y(v));
      });
      ctx.stroke();
      ctx.fillStyle = line.color;
      ctx.fillText(line.name, pad.l + 4 + k * 72, 12);
    });
    ctx.fillStyle = COLORS.text;
    if (this.times.length > 0) {
      ctx.fillText(`t ${t1.toFixed(2)} s`, w - pad.r - 70, h - 3);
    }
  }
}
