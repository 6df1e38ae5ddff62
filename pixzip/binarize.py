"""The adaptive stage's binarization: each residual as a few binary decisions down a fixed tree.

A subpixel's residual r (0..255, the symbol the network's softmax is over) is mapped to u = zigzag(r)
(0 = the prediction, 1 = +1, 2 = -1, ...) and coded as decisions down TREE: "u = 0?", "u < 3?", "u < 7?",
... (groups [1, 3), [3, 7), [7, 15), ..., [127, 256)), then u's place in its group, halving. Small residuals,
the common ones, take few decisions: one for u = 0, most of a photo's in 3 to 7.
"""
import numpy as np

# u -> r: u = 2e for e >= 0, -2e - 1 for e < 0, where e is r read as a signed residual (-128 .. 127)
R_OF_U = np.array([(u // 2) if u % 2 == 0 else (256 - (u + 1) // 2) % 256 for u in range(256)], dtype=np.int64)
U_OF_R = np.argsort(R_OF_U).astype(np.int64)


def _tree():
    """The binarization: a binary tree over u = 0 .. 255. A chain of decisions "u < 1?", "u < 3?", "u < 7?", ...
    "u < 127?" splits u into groups [0, 1), [1, 3), [3, 7), ..., [127, 256); each group is then halved
    until one value is left. Returns per node (255 of them, node 0 the root): its range [lo, hi) and split
    mid (bit 1: u >= mid), children (>= 0 a node, < 0 the leaf u = -1 - child), the counter slot of its
    context models' blocks (1 .. 15; 0 none), whether that is the first block (the chain and groups
    [1, 3) and [3, 7)) or its group's, its group, and its tree position (what mixers and APMs see)."""
    bounds = [0, 1, 3, 7, 15, 31, 63, 127, 256]
    lo, mid, hi, left, right, group, level = [], [], [], [], [], [], []

    def add(a, m, b, g, lv):
        for seq, v in zip((lo, mid, hi, left, right, group, level), (a, m, b, -1, -1, g, lv)):
            seq.append(v)
        return len(lo) - 1

    def subtree(a, b, g, lv):  # the group [a, b) halved; its root node, or a leaf
        if b - a == 1:
            return -1 - a
        k = add(a, (a + b) // 2, b, g, lv)
        left[k], right[k] = subtree(a, (a + b) // 2, g, lv + 1), subtree((a + b) // 2, b, g, lv + 1)
        return k

    chain = [add(bounds[k], bounds[k + 1], 256, -1, k) for k in range(7)]
    for k, node in enumerate(chain):
        left[node] = subtree(bounds[k], bounds[k + 1], k, 0)
        right[node] = chain[k + 1] if k + 1 < 7 else subtree(127, 256, 7, 0)
    n = len(lo)
    slot, first, position = [0] * n, [0] * n, [0] * n
    firsts = chain + [k for k in range(n) if group[k] in (1, 2)]  # 7 + 1 + 3 nodes: the first block
    for s_, k in enumerate(firsts):
        slot[k], first[k], position[k] = s_ + 1, 1, s_
    for g in range(3, 8):  # a group's block: its top 4 levels (15 nodes); deeper nodes have no counters
        nodes = sorted((k for k in range(n) if group[k] == g), key=lambda k: (level[k], lo[k]))
        for s_, k in enumerate(nodes):
            slot[k] = s_ + 1 if s_ < 15 else 0
            position[k] = len(firsts) + (g - 3) * 8 + level[k]
    return np.array([lo, mid, hi, left, right, slot, first, group, position], dtype=np.int64)


TREE = _tree()
TREE_POSITIONS = int(TREE[8].max()) + 1
MAX_DECISIONS = 16  # the deepest leaf: 7 in the chain, 8 in the last group
