// Shapes dataset, captions: 5 captions per scene from templates, lowercase and without a final
// period. Every caption names every object's color and shape; some add sizes, the background,
// and for several objects spatial relations computed from the box centres (dominant axis).
// Each of the 5 slots is a different sentence structure; a seeded choice varies the wording.
import type { RandomGenerator } from "pure-rand/types/RandomGenerator";
import { backgroundName, pick, type Scene, type SceneObject } from "./scene.js";

export const RELATIONS = ["to the left of", "to the right of", "above", "below"] as const;
export type Relation = (typeof RELATIONS)[number];

/** Where `a` is relative to `b`, along the axis their centres differ most on (x wins ties). */
export function relation(a: SceneObject, b: SceneObject): Relation {
  const dx = b.cx - a.cx;
  const dy = b.cy - a.cy;
  if (Math.abs(dx) >= Math.abs(dy)) return dx > 0 ? "to the left of" : "to the right of";
  return dy > 0 ? "above" : "below"; // image y grows downwards
}

const article = (word: string): string => (/^[aeiou]/.test(word) ? "an" : "a");
/** "red circle" or "small red circle". */
const words = (o: SceneObject, sized: boolean): string => (sized ? `${o.size} ${o.color} ${o.shape}` : `${o.color} ${o.shape}`);
/** "a red circle", "an orange square", "a small orange square". */
const np = (o: SceneObject, sized = false): string => {
  const w = words(o, sized);
  return `${article(w)} ${w}`;
};
/** "a, b and c". */
const list = (items: string[]): string => (items.length === 1 ? items[0]! : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`);

function single(o: SceneObject, bg: string, rng: RandomGenerator): string[] {
  return [
    pick(rng, [np(o), `one ${words(o, false)}`]),
    pick(rng, [np(o, true), `a single ${words(o, true)}`]),
    pick(rng, [`${np(o)} on ${bg}`, `${np(o, true)} on ${bg}`]),
    pick(rng, [`there is ${np(o, true)}`, `there is ${np(o)} in the image`]),
    pick(rng, [`an image of one ${words(o, false)}`, `a picture of ${np(o, true)}`]),
  ];
}

function pair(a: SceneObject, b: SceneObject, bg: string, rng: RandomGenerator): string[] {
  return [
    `${np(a, true)} ${relation(a, b)} ${np(b, true)}`,
    pick(rng, [`${np(a)} and ${np(b)}`, `${np(a, true)} and ${np(b, true)}`]),
    `two shapes: ${np(a)} and ${np(b)}`,
    `${np(a)} ${relation(a, b)} ${np(b)}`,
    pick(rng, [`an image of ${np(a)} and ${np(b)} on ${bg}`, `there are two shapes, ${np(a, true)} and ${np(b, true)}`]),
  ];
}

function triple(a: SceneObject, b: SceneObject, c: SceneObject, bg: string, rng: RandomGenerator): string[] {
  const leftToRight = [a, b, c].sort((p, q) => p.cx - q.cx);
  return [
    pick(rng, [`three shapes: ${list([a, b, c].map((o) => np(o)))}`, `an image of three shapes: ${list([a, b, c].map((o) => np(o)))}`]),
    list([a, b, c].map((o) => np(o, true))),
    `${np(a)} ${relation(a, b)} ${np(b)}, and ${np(c)} ${relation(c, b)} the ${words(b, false)}`,
    `from left to right: ${list(leftToRight.map((o) => np(o, pick(rng, [false, true]))))}`,
    pick(rng, [`there are three shapes on ${bg}: ${list([a, b, c].map((o) => np(o)))}`, `${np(a, true)} ${relation(a, c)} ${np(c, true)}, and ${np(b, true)}`]),
  ];
}

/**
 * The 5 captions of a scene. Objects are named in reading order (left to right by centre), as
 * people mostly describe a scene, so which object a caption names first follows the image; the
 * templates and the size words vary.
 */
export function captionScene(scene: Scene, rng: RandomGenerator): string[] {
  const name = backgroundName(scene.background);
  const bg = `${article(name)} ${name} background`;
  const objects = [...scene.objects].sort((p, q) => p.cx - q.cx || p.cy - q.cy);
  const [a, b, c] = objects;
  if (!a) throw new Error("shapes: a scene needs at least one object");
  if (!b) return single(a, bg, rng);
  if (!c) return pair(a, b, bg, rng);
  return triple(a, b, c, bg, rng);
}
