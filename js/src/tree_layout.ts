// Layout of the tree view, in units (1 = one leaf column / one depth row).
//
// `layoutTree` must stay self-contained (no imports, no module-level helpers): the view
// ships its source text to a Web Worker through a Blob URL, so the layout of a large
// tree never blocks the page. Without `Worker` (tests, old browsers) it runs in place.

/** What the layout needs of each node; `lane` is only read by the "layered" mode. */
export interface LayoutInput {
  parent: (number | null)[];
  depth: number[];
  lane: number[];
  visible: boolean[];
  mode: "tree" | "layered";
}

/** x and y per node index (NaN for hidden nodes), and the extent. */
export interface Layout { x: number[]; y: number[]; width: number; height: number }

/**
 * "tree": leaves side by side in depth-first order, each parent centred over its visible
 * children (children keep creation order). "layered": x = 8 × lane (a debate agent),
 * y = depth (a round). Iterative, so a 10,000-deep chain does not overflow the stack.
 */
export function layoutTree(input: LayoutInput): Layout {
  const n = input.parent.length;
  const x: number[] = new Array(n).fill(NaN);
  const y: number[] = new Array(n).fill(NaN);
  let width = 0;
  let height = 0;
  if (input.mode === "layered") {
    for (let i = 0; i < n; i++) {
      if (!input.visible[i]) continue;
      x[i] = (input.lane[i] || 0) * 8; // lanes wide apart: room for labels when zoomed in
      y[i] = input.depth[i];
      width = Math.max(width, x[i] + 1);  // in leaf columns, like "tree"
      height = Math.max(height, y[i] + 1);
    }
    return { x, y, width, height };
  }
  // children lists of visible nodes (node ids are indices; parents need not come first)
  const kids: number[][] = Array.from({ length: n }, () => []);
  const roots: number[] = [];
  for (let i = 0; i < n; i++) {
    if (!input.visible[i]) continue;
    const p = input.parent[i];
    if (p === null || p === undefined || p < 0 || p >= n || !input.visible[p]) roots.push(i);
    else kids[p].push(i);
  }
  let nextLeaf = 0;
  // post-order with an explicit stack: [node, next child index]
  for (const root of roots) {
    const stack: [number, number][] = [[root, 0]];
    const level: number[] = [0];
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [node, k] = top;
      const d = level[level.length - 1];
      if (k < kids[node].length) {
        top[1] = k + 1;
        stack.push([kids[node][k], 0]);
        level.push(d + 1);
        continue;
      }
      stack.pop();
      level.pop();
      const c = kids[node];
      if (c.length === 0) x[node] = nextLeaf++;
      else x[node] = (x[c[0]] + x[c[c.length - 1]]) / 2;
      y[node] = d;
      height = Math.max(height, d + 1);
    }
  }
  width = nextLeaf;
  return { x, y, width, height };
}
