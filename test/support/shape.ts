/**
 * Compares an answer with a vendor document's example answer by shape: every field the example
 * has must be there with a value of the same JSON type (a documented null takes any value: "may be
 * null"). Simulator spec tests use it, since documents show shapes by example.
 */

export const jsonType = (v: unknown): string => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);

export interface ShapeOptions {
  /** Paths left out (".files[].print"), each with why. */
  skip?: Readonly<Record<string, string>>;
  /**
   * What kind an array element is, so that each documented element is compared with an answered
   * one of its kind (a file with a file); default: every element is of one kind.
   */
  kindOf?: (element: unknown) => unknown;
}

/** Where `actual` lacks a field of `doc` or holds another JSON type; [] when the shapes agree. */
export function shapeDiff(doc: unknown, actual: unknown, options: ShapeOptions = {}, path = ""): string[] {
  const skip = options.skip ?? {};
  if (path in skip || doc === null) return [];
  if (jsonType(doc) !== jsonType(actual))
    return [`${path}: ${jsonType(doc)} in the document, ${jsonType(actual)} here`];
  if (Array.isArray(doc) && Array.isArray(actual)) {
    const kind = options.kindOf ?? (() => undefined);
    const elements: unknown[] = actual;
    return (doc as unknown[]).flatMap((element) => {
      const match = elements.find((a) => kind(a) === kind(element));
      return match === undefined ? [] : shapeDiff(element, match, options, `${path}[]`);
    });
  }
  if (typeof doc === "object" && typeof actual === "object" && actual !== null) {
    return Object.entries(doc as Record<string, unknown>).flatMap(([key, value]) => {
      const at = `${path}.${key}`;
      if (at in skip) return [];
      return key in actual
        ? shapeDiff(value, (actual as Record<string, unknown>)[key], options, at)
        : [`${at}: missing`];
    });
  }
  return [];
}
