// The resonance map heatmap: |T̂|² over lags (rows, top = shortest) × ω (columns), drawn
// through a small perceptual palette, with the peak marked. Rule: data in, pixels out.

import type { ResonancePublic } from "../api";
import { COLORS, fit } from "./canvas";

const STOPS: readonly [number, number, number][] = [
  [13, 8, 135],
  [126, 3, 168],
  [204, 71, 120],
  [248, 149, 64],
  [240, 249, 33],
];

/** The palette colour of v in [0, 1] (plasma-like, linear between five stops). */
export function paletteRgb(v: number): [number, number, number] {
  const s = Math.min(1, Math.max(0, v)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(s));
  const f = s - i;
  const a = STOPS[i] ?? [0, 0, 0];
  const b = STOPS[i + 1] ?? [0, 0, 0];
  return [0, 1, 2].map((k) => Math.round((a[k] ?? 0) + ((b[k] ?? 0) - (a[k] ?? 0)) * f)) as [
    number,
    number,
    number,
  ];
}

export class Heatmap {
  private map: ResonancePublic | null = null;
  private note = "waiting for the first map";

  constructor(private readonly canvas: HTMLCanvasElement) {}

  set(map: ResonancePublic | null, note: string): void {
    this.map = map;
    this.note = note;
  }

  draw(): void {
    const { ctx, w, h } = fit(this.canvas);
    ctx.font = "11px system-ui, sans-serif";
    const m = this.map;
    if (m === null || m.power.length === 0) {
      ctx.fillStyle = COLORS.text;
      ctx.fillText(this.note, 8, h / 2);
      return;
    }
    const rows = m.power.length;
    const cols = m.power[0]?.length ?? 0;
    const pad = { l: 8, r: 8, t: 8, b: 18 };
    const cw = (w - pad.l - pad.r) / Math.max(1, cols);
    const rh = (h - pad.t - pad.b) / rows;
    m.power.forEach((row, i) => {
      row.forEach((v, j) => {
        const [r, g, b] = paletteRgb(v);
        ctx.fillStyle = `rgb(${r},${g},${b})`;
        ctx.fillRect(pad.l + j * cw, pad.t + i * rh, Math.ceil(cw), Math.ceil(rh));
      });
    });
    const pi = m.peak ? m.lags.indexOf(m.peak.lag) : -1;
    const pj = m.peak ? m.omegas.indexOf(m.peak.omega) : -1;
    if (pi >= 0 && pj >= 0) {
      ctx.strokeStyle = "#ffffff";
      ctx.lineWidth = 1.5;
      ctx.strokeRect(pad.l + pj * cw, pad.t + pi * rh, Math.max(3, cw), Math.max(3, rh));
    }
    ctx.fillStyle = COLORS.text;
    const top = m.omegas[m.omegas.length - 1] ?? 0;
    ctx.fillText(`ω 0 … ${top.toFixed(1)} rad/s  ·  lag ${m.lags[0]?.toFixed(2)} … ${m.lags[rows - 1]?.toFixed(2)} s`, pad.l, h - 4);
  }
}
