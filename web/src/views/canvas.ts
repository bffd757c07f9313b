// Canvas plumbing shared by the views: a HiDPI-sized 2-D context and the palette.
// Rule: no view keeps pixels of its own; each redraws its whole canvas from its data.

export const COLORS = {
  bg: "#10151c",
  grid: "#263140",
  text: "#9fb0c3",
  master: "#5aa9ff",
  emissary: "#ffb454",
  sync: "#7ee787",
  collapse: "rgba(126, 231, 135, 0.16)",
  accent: "#d2a8ff",
};

/** Resize the canvas to its CSS box × devicePixelRatio; the context draws in CSS pixels. */
export function fit(canvas: HTMLCanvasElement): { ctx: CanvasRenderingContext2D; w: number; h: number } {
  const ratio = window.devicePixelRatio || 1;
  const w = Math.max(1, canvas.clientWidth);
  const h = Math.max(1, canvas.clientHeight);
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
  }
  const ctx = canvas.getContext("2d");
  if (ctx === null) throw new Error("no 2-D canvas context");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.fillStyle = COLORS.bg;
  ctx.fillRect(0, 0, w, h);
  return { ctx, w, h };
}

/** Hue of cell `i` of `n`, spread around the colour wheel. */
export function cellColor(i: number, n: number): string {
  return `hsl(${Math.round((360 * i) / Math.max(1, n))}, 75%, 62%)`;
}
