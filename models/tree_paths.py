"""Per-feature contributions along each row's decision path in a LightGBM model (``TreePaths``)."""

from __future__ import annotations

import numpy as np


class TreePaths:
    """Per-feature contributions of a LightGBM model along each row's decision path (Saabas).

    Each split on a row's path credits its feature with the change in node value, so per row the
    contributions plus the bias add up to the raw score, like ``pred_contrib`` (TreeSHAP) but at the
    cost of a prediction: LightGBM finds the leaves (``pred_leaf``), and each leaf's path
    contributions are precomputed from ``Booster.dump_model()``. ``check`` compares the sums with
    the booster's raw scores.
    """

    def __init__(self, dump: dict):
        if dump.get("num_tree_per_iteration", 1) != 1:
            raise ValueError("TreePaths supports single-output models only")
        self.feature_names = list(dump["feature_names"])
        n_f = len(self.feature_names)
        trees = [t["tree_structure"] for t in dump["tree_info"]]
        sizes = [max(int(t.get("num_leaves", 1)), 1) for t in dump["tree_info"]]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.leaf_contrib = np.zeros((int(sum(sizes)), n_f + 1))
        self.leaf_value = np.zeros(int(sum(sizes)))
        objective = str(dump.get("objective", ""))
        sigmoid = [part for part in objective.split() if part.startswith("sigmoid:")]
        # binary objective: P = 1 / (1 + exp(-sigmoid * raw)); None for anything else
        self.sigmoid = float(sigmoid[0].split(":")[1]) if objective.startswith("binary") and sigmoid else None
        for t, root in enumerate(trees):
            base = float(root.get("internal_value", root.get("leaf_value", 0.0)))
            stack = [(root, np.zeros(n_f))]
            while stack:
                node, acc = stack.pop()
                if "split_feature" not in node:
                    row = self.offsets[t] + int(node.get("leaf_index", 0))
                    self.leaf_contrib[row, :n_f] = acc
                    self.leaf_contrib[row, n_f] = base
                    self.leaf_value[row] = float(node["leaf_value"])
                    continue
                f, here = int(node["split_feature"]), float(node["internal_value"])
                for child in (node["left_child"], node["right_child"]):
                    value = float(child["internal_value"] if "split_feature" in child else child["leaf_value"])
                    nxt = acc.copy()
                    nxt[f] += value - here
                    stack.append((child, nxt))
        # A path credits at most a few features: keep, per tree, the columns of the features it
        # splits on (over its leaves), in tree order, so rows add only those up.
        self._sizes = np.asarray(sizes, dtype=np.int64)
        self._columns = []
        for t, (lo, size) in enumerate(zip(self.offsets.tolist(), sizes)):
            block = self.leaf_contrib[lo: lo + size, :n_f]
            for f in np.flatnonzero((block != 0).any(axis=0)).tolist():
                self._columns.append((t, f, np.ascontiguousarray(block[:, f])))
        bias, total = [], 0.0
        for b in self.leaf_contrib[self.offsets, n_f].tolist():
            total += b  # summed in tree order, as the rows' contributions are
            bias.append(total)
        self._bias = np.asarray(bias)

    def contributions(self, leaves: np.ndarray, block_rows: int = 65536) -> np.ndarray:
        """(n_rows, n_features + 1) from ``booster.predict(X, pred_leaf=True)``; last column the bias."""
        leaves = np.asarray(leaves, dtype=np.int64).reshape(len(leaves), -1)
        n, n_t = leaves.shape
        if n * n_t <= 20_000:  # a few rows: a dense gather is quickest
            return self.leaf_contrib[leaves + self.offsets[None, :n_t]].sum(axis=1)
        bad = np.flatnonzero(((leaves < 0) | (leaves >= self._sizes[None, :n_t])).any(axis=0))
        if len(bad):
            t = int(bad[0])
            raise ValueError(
                f"TreePaths.contributions: leaf indices of tree {t} must be in [0, {int(self._sizes[t])}), "
                f"got {int(leaves[:, t].min())}..{int(leaves[:, t].max())}"
            )
        n_f = len(self.feature_names)
        out = np.empty((n, n_f + 1))
        for lo in range(0, n, block_rows):
            by_tree = np.ascontiguousarray(leaves[lo: lo + block_rows].T)
            acc = np.zeros((n_f + 1, by_tree.shape[1]))
            part = np.empty(by_tree.shape[1])
            # per (tree, feature it splits on), in tree order: each sum adds the same terms in the
            # same order as the dense product did (minus exact zeros), so the values are identical
            for t, f, column in self._columns:
                if t >= n_t:
                    break
                np.take(column, by_tree[t], out=part, mode="clip")  # indices checked above
                np.add(acc[f], part, out=acc[f])
            acc[n_f] = self._bias[n_t - 1] if n_t else 0.0
            out[lo: lo + by_tree.shape[1]] = acc.T
        return out

    def raw_scores(self, leaves: np.ndarray) -> np.ndarray:
        """The raw scores (log-odds) of rows from their leaves: the sum of the leaf values."""
        leaves = np.asarray(leaves, dtype=np.int64).reshape(len(leaves), -1)
        return self.leaf_value[leaves + self.offsets[None, : leaves.shape[1]]].sum(axis=1)

    def probabilities(self, leaves: np.ndarray) -> np.ndarray:
        if self.sigmoid is None:
            raise ValueError("TreePaths.probabilities needs a binary objective")
        return 1.0 / (1.0 + np.exp(-self.sigmoid * self.raw_scores(leaves)))

    def check(self, booster, X: np.ndarray, atol: float = 1e-6) -> float:
        """Largest gap between the contribution sums and the booster's raw scores on ``X``."""
        X = np.asarray(X, dtype=np.float64)
        raw = np.asarray(booster.predict(X, raw_score=True, num_threads=1))
        leaves = booster.predict(X, pred_leaf=True, num_threads=1)
        gap = float(np.max(np.abs(self.contributions(leaves).sum(axis=1) - raw))) if len(raw) else 0.0
        if not gap <= atol:
            raise ValueError(f"TreePaths: contributions do not add up to the raw scores (gap {gap:.3g} > {atol})")
        return gap
