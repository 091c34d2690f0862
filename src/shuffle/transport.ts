// How many negatives each label class sends to each other class: a small min-cost
// transportation problem, solved by successive shortest paths (Dijkstra on reduced costs,
// dense: the classes are few).
//
// Class a has n_a rows; every row sends K edges and every row receives K (the B x K
// result read as a K-regular bipartite graph, rows -> negatives). x[a][b] edges go from
// class a to class b: at most n_a * n_b of them when a != b (each pair once, cost 0), at
// most diagCap[a] inside class a, each at diagCost[a].

export interface TransportProblem {
  /** rows per class */
  sizes: number[];
  /** negatives per row */
  k: number;
  /** most edges that may stay inside each class */
  diagCap: number[];
  /** cost of each such edge */
  diagCost: number[];
}

/** The optimal plan: x[a * C + b] edges from class a to class b (C classes). */
export function solveTransport({ sizes, k, diagCap, diagCost }: TransportProblem): Float64Array {
  const C = sizes.length;
  const V = 2 * C + 2;
  const s = 2 * C;
  const t = 2 * C + 1;
  // Residual capacities and costs; no two original arcs run opposite ways, so the
  // reverse of arc (u, v) can share the matrix cell (v, u) with cost -cost(u, v).
  const cap = new Float64Array(V * V);
  const cost = new Float64Array(V * V);
  const arc = (u: number, v: number, c: number, w: number) => {
    cap[u * V + v] = c;
    cost[u * V + v] = w;
    cost[v * V + u] = -w;
  };
  let total = 0;
  for (let a = 0; a < C; a++) {
    arc(s, a, k * sizes[a], 0);
    arc(C + a, t, k * sizes[a], 0);
    total += k * sizes[a];
    for (let b = 0; b < C; b++) {
      if (a === b) arc(a, C + a, Math.min(diagCap[a], k * sizes[a]), diagCost[a]);
      // n_a * n_b may pass 2^53; K * min(n_a, n_b) bounds the flow anyway.
      else arc(a, C + b, Math.min(sizes[a] * sizes[b], k * sizes[a], k * sizes[b]), 0);
    }
  }

  const potential = new Float64Array(V);
  const dist = new Float64Array(V);
  const prev = new Int32Array(V);
  const done = new Uint8Array(V);
  let sent = 0;
  while (sent < total) {
    dist.fill(Infinity);
    done.fill(0);
    prev.fill(-1);
    dist[s] = 0;
    for (;;) {
      let u = -1;
      for (let v = 0; v < V; v++) if (!done[v] && dist[v] < Infinity && (u < 0 || dist[v] < dist[u])) u = v;
      if (u < 0) break;
      done[u] = 1;
      for (let v = 0; v < V; v++) {
        if (cap[u * V + v] <= 0 || done[v]) continue;
        const d = dist[u] + cost[u * V + v] + potential[u] - potential[v];
        if (d < dist[v]) {
          dist[v] = d;
          prev[v] = u;
        }
      }
    }
    if (!(dist[t] < Infinity)) throw new Error('modalityShuffle: no K-regular plan exists (internal error)');
    // Johnson's potentials keep every residual reduced cost >= 0; nodes out of reach
    // move by the farthest distance, which keeps their arcs into reach non-negative too.
    let farthest = 0;
    for (let v = 0; v < V; v++) if (dist[v] < Infinity) farthest = Math.max(farthest, dist[v]);
    for (let v = 0; v < V; v++) potential[v] += dist[v] < Infinity ? dist[v] : farthest;
    let push = total - sent;
    for (let v = t; v !== s; v = prev[v]) push = Math.min(push, cap[prev[v] * V + v]);
    for (let v = t; v !== s; v = prev[v]) {
      cap[prev[v] * V + v] -= push;
      cap[v * V + prev[v]] += push;
    }
    sent += push;
  }

  // Flow on arc a -> b is what its reverse cell holds.
  const x = new Float64Array(C * C);
  for (let a = 0; a < C; a++) for (let b = 0; b < C; b++) x[a * C + b] = cap[(C + b) * V + a];
  return x;
}
