// Shapes dataset, rendering: a scene becomes an SVG (background + objects) that sharp rasterises
// (librsvg) into an RGB PNG. Noisy backgrounds are a raw pixel buffer (light base color plus
// small per-pixel grey noise from a seeded generator) under the SVG objects, composited by sharp.
import sharp from "sharp";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";
import { uniformInt } from "pure-rand/distribution/uniformInt";
import { COLORS, type Background, type RGB, type Scene, type SceneObject } from "./scene.js";

const rgb = (c: RGB): string => `rgb(${c[0]},${c[1]},${c[2]})`;

/** Triangles point up: apex at the top middle of the box, base along its bottom edge. */
export function triangleCorners(o: SceneObject): [number, number][] {
  const h = o.extent / 2;
  return [
    [o.cx, o.cy - h],
    [o.cx + h, o.cy + h],
    [o.cx - h, o.cy + h],
  ];
}

/** The point inside the shape that shows its color: the centroid (box centre for circles and squares). */
export const centroid = (o: SceneObject): [number, number] => (o.shape === "triangle" ? [o.cx, o.cy + o.extent / 6] : [o.cx, o.cy]);

function objectSvg(o: SceneObject): string {
  const fill = rgb(COLORS[o.color]);
  const h = o.extent / 2;
  switch (o.shape) {
    case "circle":
      return `<circle cx="${o.cx}" cy="${o.cy}" r="${h}" fill="${fill}"/>`;
    case "square":
      return `<rect x="${o.cx - h}" y="${o.cy - h}" width="${o.extent}" height="${o.extent}" fill="${fill}"/>`;
    case "triangle":
      return `<polygon points="${triangleCorners(o).map(([x, y]) => `${x},${y}`).join(" ")}" fill="${fill}"/>`;
  }
}

function backgroundSvg(b: Background, side: number): string {
  if (b.kind === "plain") return `<rect width="${side}" height="${side}" fill="${rgb(b.color)}"/>`;
  if (b.kind === "noisy") return ""; // the raw noise buffer underneath is the background
  // Gradient from one corner/edge to the opposite one; negative x2 runs right to left.
  const [x1, x2] = b.x2 < 0 ? [1, 0] : [0, b.x2];
  return (
    `<defs><linearGradient id="bg" x1="${x1}" y1="0" x2="${x2}" y2="${b.y2}">` +
    `<stop offset="0" stop-color="${rgb(b.from)}"/><stop offset="1" stop-color="${rgb(b.to)}"/></linearGradient></defs>` +
    `<rect width="${side}" height="${side}" fill="url(#bg)"/>`
  );
}

/** The SVG of a scene (without the noise of a noisy background). */
export function sceneSvg(scene: Scene): string {
  const { side } = scene;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${side}" height="${side}" viewBox="0 0 ${side} ${side}">` +
    backgroundSvg(scene.background, side) +
    scene.objects.map(objectSvg).join("") +
    `</svg>`
  );
}

/** side x side RGB pixels: the base color plus the same offset in [-amplitude, amplitude] on each channel. */
export function noiseBuffer(color: RGB, amplitude: number, noiseSeed: number, side: number): Buffer {
  const rng = xoroshiro128plus(noiseSeed);
  const out = Buffer.alloc(side * side * 3);
  for (let p = 0; p < side * side; p++) {
    const d = uniformInt(rng, -amplitude, amplitude);
    for (let c = 0; c < 3; c++) out[p * 3 + c] = Math.min(255, Math.max(0, (color[c] ?? 0) + d));
  }
  return out;
}

/** The scene as an RGB PNG of side x side pixels. */
export async function renderScene(scene: Scene): Promise<Buffer> {
  const svg = Buffer.from(sceneSvg(scene));
  const { background: b, side } = scene;
  const image =
    b.kind === "noisy"
      ? sharp(noiseBuffer(b.color, b.amplitude, b.noiseSeed, side), { raw: { width: side, height: side, channels: 3 } }).composite([{ input: svg }])
      : sharp(svg);
  return image.removeAlpha().png().toBuffer();
}
