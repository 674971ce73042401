"""scikit-learn's default ``GradientBoostingClassifier``, refitted on presorted features.

DCI (disentanglement_lib's ``compute_importance_gbt``) fits one
``GradientBoostingClassifier()`` per factor: multinomial deviance (binomial for two classes),
100 stages of one depth-3 squared-error regression tree per class, learning rate 0.1, exact best
splits, class priors as the initial prediction, one Newton step per leaf. scikit-learn sorts
the samples of every node for every feature of every tree; the samples never change between
stages, so :class:`ExactGradientBoosting` sorts each feature once and grows every tree by
scans and stable partitions of those sorted lists (numba, compiled on first use, ~9 s, and
kept in numba's on-disk cache for later processes). Three things make the scans cheap without
changing a bit: the sorted lists flag the samples whose value is within ``FEATURE_THRESHOLD``
of the one before them, so values are read only there; the T trees of a stage share the root,
so one pass per feature finds every class's best root split; gradients and predictions are
stored class by class, so each tree reads its own row contiguously. The hot loops index with
unsigned integers (``_U``): numba tests every signed index for a negative value to wrap.

It follows scikit-learn 1.9's code path step by step, so that on codes without tied values the
trees, leaf values, importances and predictions equal ``GradientBoostingClassifier
(random_state=0)``'s bit for bit:

* X as float32; the split scan skips positions whose values differ by at most
  ``FEATURE_THRESHOLD`` = float32(1e-7) (``BestSplitter``), a feature whose node range is that
  small is "constant" and is remembered as such by the node's descendants;
* features are visited in the order of scikit-learn's per-node Fisher-Yates draws: each tree
  draws one seed ``random_state.randint(0, 2**31 - 1)`` from the estimator's ``RandomState``,
  then xorshift ``our_rand_r`` steps through the node's features (known constants are drawn and
  skipped), in depth-first order, the feature array carried from node to node;
* the best split is the first (in that order, then in increasing threshold) to maximise the
  proxy ``S_L²/n_L + S_R²/n_R``, where ``S_L`` is accumulated the way ``Criterion.update`` does
  (forward from the last position, or back from the node's total when that is shorter), and
  ``S_R = S − S_L``; the threshold is the midpoint of the two float32 values;
* the node's sample order (which sets the summation order of ``S`` and of the children's
  impurities) is the order of the last feature sorted, then partitioned in place as
  ``partition_samples_final`` does;
* leaf values are ``(K−1)/K · mean(r) / mean(p(1−p))`` over the leaf's samples (NumPy's
  pairwise sum reproduced), and ``raw += 0.1 · value``;
* ``feature_importances_`` is the mean over trees with a split of each tree's unnormalised
  impurity decrease ``(n·imp − n_L·imp_L − n_R·imp_R) / n``, normalised to sum 1.

The one place it can part from scikit-learn is a block of samples with equal float32 values:
scikit-learn's introsort leaves their order unspecified, this engine keeps them in index
order, so sums over them can differ in the last bit and a split that ties to that bit with
another can go the other way. The tests and ``benchmarks/bench_metrics.py`` measure the effect
on DCI against scikit-learn itself.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy.special import logit
from scipy.stats import gmean

from untwine.errors import UntwineError

FEATURE_THRESHOLD = np.float32(1e-7)
"""scikit-learn's ``_partitioner.FEATURE_THRESHOLD``: values closer than this are not split."""
RAND_R_MAX = 2147483647
"""scikit-learn's ``_random.RAND_R_MAX``: the exclusive bound of each tree's seed draw."""
_EPSILON = float(np.finfo(np.float64).eps)
_LEAF = -1
_SLACK = 1.0 + 1e-12
"""Relative margin of the reciprocal bound of the split proxy (its error is a few 1e-16)."""
_U = np.uint64
"""Index type of the hot loops: numba wraps negative (signed) indices, with a test per access."""
_ONE = _U(1)
_ALL = ~_U(0)
"""The mask that keeps a whole index (for orders that carry no tie flag)."""


def _compiled(fn):
    """numba-compiled, nogil, kept in numba's disk cache where it can write one.

    The cache (``__pycache__`` beside this file, else the user's cache directory) spares
    later processes the ~9 s compilation; with no writable location numba refuses
    ``cache=True`` at import, so then each process compiles instead.
    """
    try:
        return njit(nogil=True, cache=True)(fn)
    except RuntimeError:
        return njit(nogil=True)(fn)


@_compiled
def _rand_r(state: np.ndarray) -> int:
    """scikit-learn's ``our_rand_r``: one xorshift32 step of state[0], modulo 2**31."""
    s = state[0]
    if s == 0:
        s = 1
    s ^= (s << 13) & 0xFFFFFFFF
    s ^= s >> 17
    s ^= (s << 5) & 0xFFFFFFFF
    state[0] = s
    return s % 2147483648


@_compiled
def _block_sum(a: np.ndarray, lo: int, n: int) -> float:
    """NumPy's pairwise sum of a block of n <= 128: one by one under 8, else 8 accumulators."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    m = n - n % 8
    i = 8
    while i < m:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for j in range(m, n):
        res += a[lo + j]
    return res


@_compiled
def _pairwise_sum(a: np.ndarray, lo: int, n: int) -> float:
    """NumPy's pairwise summation of a[lo:lo+n] (``np.add.reduce`` on contiguous float64).

    Over 128 values NumPy sums the halves (the first rounded down to a multiple of 8) and adds
    them; this walks that recursion with explicit stacks, because numba's on-disk cache
    cannot hold a recursive function (a later process that loaded one crashed).
    """
    todo = np.empty((130, 2), dtype=np.int64)  # (lo, n) to sum; n = -1: add the top two sums
    sums = np.empty(66)
    todo[0, 0] = lo
    todo[0, 1] = n
    top = 1
    num_sums = 0
    while top > 0:
        top -= 1
        lo, n = todo[top, 0], todo[top, 1]
        if n < 0:
            num_sums -= 1
            sums[num_sums - 1] = sums[num_sums - 1] + sums[num_sums]
        elif n <= 128:
            sums[num_sums] = _block_sum(a, lo, n)
            num_sums += 1
        else:
            n2 = n // 2
            n2 -= n2 % 8
            todo[top, 0], todo[top, 1] = 0, -1
            todo[top + 1, 0], todo[top + 1, 1] = lo + n2, n - n2
            todo[top + 2, 0], todo[top + 2, 1] = lo, n2
            top += 3
    return sums[0]


@_compiled
def _move_left(y, seg, mask, pos, p, end, sum_left, sum_total):
    """``Criterion.update(p)`` from ``pos``: the sum of y over the node's samples left of p.

    Forward over [pos, p), or back from the node's total over [p, end) when that is shorter:
    scikit-learn's summation order, which the proxy's last bits depend on. (The weight left
    of p is p − start either way: unit weights sum exactly.)
    """
    if (p - pos) <= (end - p):
        for q in range(pos, p):
            sum_left += y[_U(seg[q]) & mask]
        return sum_left
    sum_left = sum_total
    q = end
    while q > p:
        q -= _ONE
        sum_left -= y[_U(seg[q]) & mask]
    return sum_left


@_compiled
def _too_close(xf, entry, s, s_prev):
    """Whether sample s (its sorted-list entry ``entry``) is too close to split from the node's
    previous sample: only a flagged entry can be (see :func:`presort`)."""
    return entry != s and xf[s] <= xf[s_prev] + FEATURE_THRESHOLD


@_compiled
def _scan_feature(xf, seg, y, start, end, sum_total, wn, best, inv, mask):
    """Best split of one feature's sorted node segment; updates best = [proxy, pos, threshold].

    Returns True when this feature improved ``best``. scikit-learn's scan: a position p is a
    candidate unless its value is within ``FEATURE_THRESHOLD`` of the one before it, and
    ``Criterion.update`` moves the left sum there from the last candidate. Entries of ``seg``
    carry the flag bit ``mask + 1`` when their value is that close to their predecessor in the
    whole sorted feature (see :func:`presort`); an unflagged sample is further than that above
    every sample before it, so values are read only at flagged samples, and the update is one
    addition except after skipped positions.
    """
    improved = False
    sum_left = 0.0
    pos = start
    s_prev = _U(seg[start]) & mask
    for p in range(start + _ONE, end):
        entry = _U(seg[p])
        s = entry & mask
        if _too_close(xf, entry, s, s_prev):
            s_prev = s
            continue
        if p - pos == _ONE:
            sum_left += y[s_prev]
        else:
            sum_left = _move_left(y, seg, mask, pos, p, end, sum_left, sum_total)
        pos = p
        sum_right = sum_total - sum_left
        bound = sum_left * sum_left * inv[p - start] + sum_right * sum_right * inv[end - p]
        if bound * _SLACK > best[0]:
            w_left = float(p - start)
            proxy = sum_left * sum_left / w_left + sum_right * sum_right / (wn - w_left)
            if proxy > best[0]:
                best[0] = proxy
                best[1] = p
                best[2] = np.float64(xf[s_prev]) / 2.0 + np.float64(xf[s]) / 2.0
                improved = True
        s_prev = s
    return improved


@_compiled
def _scan_classes(xf, seg, y_rows, sum_total, best, inv, mask, sum_left, best_proxy):
    """:func:`_scan_feature` at the root, for every class column of ``y_rows`` (n, T) at once.

    The trees of one stage share the root and its sorted lists, so which positions are
    candidates, and when ``Criterion.update`` adds one sample or moves further, is the same
    for every class: one pass serves all T trees, adding each sample's row of gradients
    (contiguous, so the additions vectorise). Writes ``best[k] = [proxy, pos, threshold]``,
    the first best split of class k on this feature (proxy −inf when none).
    """
    n, num_trees = y_rows.shape
    wn = float(n)
    for k in range(num_trees):
        sum_left[k] = 0.0
        best_proxy[k] = -np.inf
        best[k, 0] = -np.inf
        best[k, 1] = n
        best[k, 2] = 0.0
    pos = 0
    s_prev = _U(seg[0]) & mask
    for p in range(1, n):
        entry = _U(seg[p])
        s = entry & mask
        if _too_close(xf, entry, s, s_prev):
            s_prev = s
            continue
        if p - pos == 1:
            row = y_rows[s_prev]
            for k in range(num_trees):
                sum_left[k] += row[k]
        else:
            for k in range(num_trees):
                sum_left[k] = _move_left(
                    y_rows[:, k], seg, mask, _U(pos), _U(p), _U(n), sum_left[k], sum_total[k]
                )
        pos = p
        a = inv[p]
        b = inv[n - p]
        hit = False
        for k in range(num_trees):
            sl = sum_left[k]
            sr = sum_total[k] - sl
            hit |= (sl * sl * a + sr * sr * b) * _SLACK > best_proxy[k]
        if hit:
            w_left = float(p)
            for k in range(num_trees):
                sl = sum_left[k]
                sr = sum_total[k] - sl
                if (sl * sl * a + sr * sr * b) * _SLACK <= best_proxy[k]:
                    continue
                proxy = sl * sl / w_left + sr * sr / (wn - w_left)
                if proxy > best_proxy[k]:
                    best_proxy[k] = proxy
                    best[k, 0] = proxy
                    best[k, 1] = p
                    best[k, 2] = np.float64(xf[s_prev]) / 2.0 + np.float64(xf[s]) / 2.0
        s_prev = s


@_compiled
def _grow_tree(
    xt,
    presorted,
    y,
    seed,
    max_depth,
    levels,
    order,
    go_left,
    inv,
    leaf_of,
    node_feature,
    node_threshold,
    node_left,
    node_right,
    importance,
    mask,
    root_best,
):
    """One ``DecisionTreeRegressor(max_depth)`` fit of y on xt (features × samples, float32).

    ``presorted[f]`` is the sample order of feature f; ``levels[depth - 1, f]`` holds the
    segments of the nodes at that depth in that order (children are written to the next
    level, so partitions never overwrite what they read). Writes the node arrays, ``leaf_of``
    (each sample's leaf) and the tree's unnormalised impurity importances; returns the node
    count. ``root_best[f]`` is the best root split on feature f, found by :func:`_scan_classes`;
    picking among them in the draw order with a strict ``>`` is what one scan after another
    would pick.
    """
    num_features, n = xt.shape
    state = np.empty(1, dtype=np.int64)
    state[0] = seed
    features = np.arange(num_features)
    constant_features = np.empty(num_features, dtype=np.int64)
    is_constant = np.zeros(num_features, dtype=np.bool_)
    best = np.empty(3)
    for i in range(n):
        order[i] = i
    importance[:] = 0.0
    wn_samples = float(n)

    # Depth-first stack of (start, end, depth, parent, is_left, n_constant), impurities apart.
    max_stack = 2 * (max_depth + 2)
    st_int = np.empty((max_stack, 6), dtype=np.int64)
    st_imp = np.empty(max_stack)
    top = 0
    st_int[0, 0] = 0
    st_int[0, 1] = n
    st_int[0, 2] = 0
    st_int[0, 3] = -1
    st_int[0, 4] = 0
    st_int[0, 5] = 0
    st_imp[0] = np.inf
    top = 1
    node_count = 0
    while top > 0:
        top -= 1
        start, end, depth = _U(st_int[top, 0]), _U(st_int[top, 1]), st_int[top, 2]
        parent, is_left, n_known = st_int[top, 3], st_int[top, 4], st_int[top, 5]
        impurity = st_imp[top]
        node = node_count
        node_count += 1
        if parent >= 0:
            if is_left:
                node_left[parent] = node
            else:
                node_right[parent] = node
        node_left[node] = _LEAF
        node_right[node] = _LEAF
        node_feature[node] = -2
        node_threshold[node] = -2.0

        # Criterion.init over the node's sample order.
        sum_total = 0.0
        sq_total = 0.0
        wn = 0.0
        for p in range(start, end):
            yi = y[order[p]]
            sum_total += yi
            sq_total += yi * yi
            wn += 1.0
        if node == 0:
            impurity = sq_total / wn - (sum_total / wn) ** 2
        is_leaf = depth >= max_depth or end - start <= _ONE or impurity <= _EPSILON

        if not is_leaf:
            src = presorted if depth == 0 else levels[depth - 1]
            f_i = num_features
            n_visited = 0
            n_found = 0
            n_drawn = 0
            n_total = n_known
            best[0] = -np.inf
            best[1] = end
            best[2] = 0.0
            best_feature = -1
            last_sorted = -1
            while f_i > n_total and (n_visited < num_features or n_visited <= n_found + n_drawn):
                n_visited += 1
                f_j = n_drawn + _rand_r(state) % (f_i - n_found - n_drawn)
                if f_j < n_known:
                    features[n_drawn], features[f_j] = features[f_j], features[n_drawn]
                    n_drawn += 1
                    continue
                f_j += n_found
                f = features[f_j]
                last_sorted = f
                xf = xt[f]
                seg = src[f]
                if xf[_U(seg[end - _ONE]) & mask] <= xf[_U(seg[start]) & mask] + FEATURE_THRESHOLD:
                    features[f_j], features[n_total] = features[n_total], features[f_j]
                    n_found += 1
                    n_total += 1
                    continue
                f_i -= 1
                features[f_i], features[f_j] = features[f_j], features[f_i]
                if depth == 0:
                    # The root's scans were done for every class at once (_scan_classes).
                    if root_best[f, 0] > best[0]:
                        best[:] = root_best[f]
                        best_feature = f
                elif _scan_feature(xf, seg, y, start, end, sum_total, wn, best, inv, mask):
                    best_feature = f
            for j in range(n_known):
                features[j] = constant_features[j]
            for j in range(n_known, n_known + n_found):
                constant_features[j] = features[j]
            n_constant = n_total

            pos = _U(best[1])
            threshold = best[2]
            if pos >= end:
                is_leaf = True
            else:
                # partition_samples_final, on the samples as the last sort left them.
                seg = src[last_sorted]
                for p in range(start, end):
                    order[p] = _U(seg[p]) & mask
                xb = xt[best_feature]
                lo = start
                hi = end
                while lo < hi:
                    if xb[order[lo]] <= threshold:
                        lo += _ONE
                    else:
                        hi -= _ONE
                        order[lo], order[hi] = order[hi], order[lo]
                # Criterion.reset + update(pos) + children_impurity on the new order: the
                # left sum forward (in the pass over the squares), or back from the total
                # when that is shorter, as _move_left decides.
                sum_left = 0.0
                sq_left = 0.0
                forward = pos - start <= end - pos
                for p in range(start, pos):
                    yi = y[order[p]]
                    if forward:
                        sum_left += yi
                    sq_left += yi * yi
                if not forward:
                    sum_left = _move_left(y, order, _ALL, start, pos, end, 0.0, sum_total)
                w_left = float(pos - start)
                w_right = wn - w_left
                sum_right = sum_total - sum_left
                imp_left = sq_left / w_left - (sum_left / w_left) ** 2
                imp_right = (sq_total - sq_left) / w_right - (sum_right / w_right) ** 2
                improvement = (wn / wn_samples) * (
                    impurity - (w_right / wn * imp_right) - (w_left / wn * imp_left)
                )
                if improvement + _EPSILON < 0.0:
                    is_leaf = True
                else:
                    node_feature[node] = best_feature
                    node_threshold[node] = threshold
                    importance[best_feature] += (
                        wn * impurity - w_left * imp_left - w_right * imp_right
                    )
                    # Children that may split need their segments of every sorted list.
                    # Stable, branch-free: each sample goes to slot w (left) or r (right).
                    if depth + 1 < max_depth:
                        for p in range(start, pos):
                            go_left[order[p]] = 1
                        for p in range(pos, end):
                            go_left[order[p]] = 0
                        for j in range(n_constant):
                            is_constant[constant_features[j]] = True
                        dst = levels[depth]
                        for g in range(num_features):
                            if is_constant[g]:
                                continue
                            source = src[g]
                            dest = dst[g]
                            w = start
                            r = pos
                            for p in range(start, end):
                                s = source[p]
                                gl = _U(go_left[_U(s) & mask])
                                dest[r + gl * (w - r)] = s  # modulo 2**64: w or r
                                w += gl
                                r += _ONE - gl
                        for j in range(n_constant):
                            is_constant[constant_features[j]] = False
                    st_int[top, 0] = pos
                    st_int[top, 1] = end
                    st_int[top, 2] = depth + 1
                    st_int[top, 3] = node
                    st_int[top, 4] = 0
                    st_int[top, 5] = n_constant
                    st_imp[top] = imp_right
                    top += 1
                    st_int[top, 0] = start
                    st_int[top, 1] = pos
                    st_int[top, 2] = depth + 1
                    st_int[top, 3] = node
                    st_int[top, 4] = 1
                    st_int[top, 5] = n_constant
                    st_imp[top] = imp_left
                    top += 1
        if is_leaf:
            for p in range(start, end):
                leaf_of[order[p]] = node
    for f in range(num_features):
        importance[f] /= wn_samples
    return node_count


@_compiled
def _boost(
    xt,
    presorted,
    y,
    raw,
    seeds,
    learning_rate,
    max_depth,
    node_feature,
    node_threshold,
    node_left,
    node_right,
    node_value,
    node_count,
    tree_importance,
    mask,
):
    """All boosting stages: per stage the negative gradient, then one tree per class column.

    ``raw`` (T, n) starts at the prior's link and ends at the training decision function;
    class-major, so that each tree reads and updates its class's row contiguously.
    T = 1 (binomial loss on y ∈ {0, 1}) or the number of classes (multinomial). ``mask``
    strips :func:`tie_flag` from the presorted entries.
    """
    num_features, n = xt.shape
    num_stages, num_trees = node_count.shape
    multiclass = num_trees > 1
    factor = (num_trees - 1) / num_trees if multiclass else 1.0
    levels = np.empty((max(max_depth - 1, 1), num_features, n), dtype=presorted.dtype)
    order = np.empty(n, dtype=_U)
    go_left = np.zeros(n, dtype=np.uint8)
    inv = np.empty(n + 1)
    inv[0] = 0.0
    for m in range(1, n + 1):
        inv[m] = 1.0 / m
    leaf_of = np.empty(n, dtype=_U)
    neg = np.empty((num_trees, n))
    neg_rows = np.empty((n, num_trees))
    root_sum = np.empty(num_trees)
    root_best = np.empty((num_features, num_trees, 3))
    class_buf = np.empty((2, num_trees))
    p_k = np.empty(num_trees)
    max_nodes = node_feature.shape[2]
    counts = np.empty(max_nodes + 1, dtype=_U)
    by_leaf = np.empty(n, dtype=_U)
    buf_g = np.empty(n)
    buf_h = np.empty(n)
    for stage in range(num_stages):
        # Negative gradient of the half multinomial (or binomial) deviance.
        for i in range(n):
            if multiclass:
                top = raw[0, i]
                for k in range(1, num_trees):
                    if top < raw[k, i]:
                        top = raw[k, i]
                total = 0.0
                for k in range(num_trees):
                    p_k[k] = np.exp(raw[k, i] - top)
                    total += p_k[k]
                for k in range(num_trees):
                    neg_rows[i, k] = -(p_k[k] / total - (1.0 if y[i] == k else 0.0))
            else:
                yt = float(y[i])
                r = raw[0, i]
                if r > -37:
                    e = np.exp(-r)
                    neg_rows[i, 0] = -(((1 - yt) - yt * e) / (1 + e))
                else:
                    neg_rows[i, 0] = -(np.exp(r) - yt)
        # Class-major copy for the trees' gathers; the root's sums in index order.
        root_sum[:] = 0.0
        for i in range(n):
            for k in range(num_trees):
                neg[k, i] = neg_rows[i, k]
                root_sum[k] += neg_rows[i, k]
        for f in range(num_features):
            seg = presorted[f]
            if xt[f, seg[n - 1] & mask] > xt[f, seg[0] & mask] + FEATURE_THRESHOLD:
                _scan_classes(
                    xt[f], seg, neg_rows, root_sum, root_best[f], inv, mask, class_buf[0],
                    class_buf[1],
                )
        for k in range(num_trees):
            t = stage * num_trees + k
            g = neg[k]
            positive = k if multiclass else 1  # the label whose one-hot target is 1
            count = _grow_tree(
                xt,
                presorted,
                g,
                seeds[t],
                max_depth,
                levels,
                order,
                go_left,
                inv,
                leaf_of,
                node_feature[stage, k],
                node_threshold[stage, k],
                node_left[stage, k],
                node_right[stage, k],
                tree_importance[t],
                mask,
                root_best[:, k],
            )
            node_count[stage, k] = count
            # Leaf values: one Newton step over each leaf's samples in index order.
            counts[:] = 0
            for i in range(n):
                counts[leaf_of[i] + _ONE] += _ONE
            for j in range(max_nodes):
                counts[j + 1] += counts[j]
            for i in range(n):
                leaf = leaf_of[i]
                by_leaf[counts[leaf]] = i
                counts[leaf] += _ONE
            values = node_value[stage, k]
            begin = _U(0)
            for leaf in range(count):
                if node_left[stage, k, leaf] != _LEAF:
                    values[leaf] = 0.0
                    continue
                end = counts[leaf]
                size = end - begin
                for j in range(size):
                    i = by_leaf[begin + j]
                    gi = g[i]
                    prob = (1.0 if y[i] == positive else 0.0) - gi
                    buf_g[j] = gi
                    buf_h[j] = prob * (1 - prob)
                m = np.int64(size)
                numerator = _pairwise_sum(buf_g, 0, m) / m
                numerator *= factor
                denominator = _pairwise_sum(buf_h, 0, m) / m
                if abs(denominator) < 1e-150:
                    values[leaf] = 0.0
                else:
                    values[leaf] = numerator / denominator
                begin = end
            for i in range(n):
                raw[k, i] += learning_rate * values[leaf_of[i]]


@_compiled
def _predict_raw(
    xt,
    raw,
    learning_rate,
    max_depth,
    node_feature,
    node_threshold,
    node_left,
    node_right,
    node_value,
):
    """raw (T, n) += learning_rate · leaf value of every tree, stage by stage, class by class.

    Every sample descends a tree at once, level by level and without branches: a leaf is its
    own child either way, so ``max_depth`` steps reach all leaves (~4x faster than walking
    each sample down its own path, whose branches the CPU cannot predict).
    """
    num_stages, num_trees, max_nodes = node_feature.shape
    n = _U(xt.shape[1])
    feat = np.empty(max_nodes, dtype=_U)
    child = np.empty(2 * max_nodes, dtype=_U)  # [left, right] of each node
    nodes = np.empty(n, dtype=_U)
    for stage in range(num_stages):
        for k in range(num_trees):
            left = node_left[stage, k]
            for j in range(max_nodes):
                leaf = left[j] == _LEAF
                feat[j] = 0 if leaf else node_feature[stage, k, j]
                child[2 * j] = j if leaf else left[j]
                child[2 * j + 1] = j if leaf else node_right[stage, k, j]
            thr = node_threshold[stage, k]
            nodes[:] = 0
            for _ in range(max_depth):
                for i in range(n):
                    node = nodes[i]
                    go_right = _ONE - _U(xt[feat[node], i] <= thr[node])
                    nodes[i] = child[node + node + go_right]
            val = node_value[stage, k]
            for i in range(n):
                raw[k, i] += learning_rate * val[nodes[i]]


def presort(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(features × samples float32 codes, per-feature sample order): shareable across fits.

    Each entry of the order is a sample index, plus the flag bit :func:`tie_flag` when its
    value is within ``FEATURE_THRESHOLD`` of the value before it: the scans then read values
    only at flagged samples (where a node's consecutive samples may be too close to split).
    """
    xt = np.ascontiguousarray(np.asarray(x, dtype=np.float32).T)
    order = np.argsort(xt, axis=1, kind="stable")
    dtype = np.int32 if xt.shape[1] < 2**30 else np.int64
    values = np.take_along_axis(xt, order, axis=1)
    tied = np.zeros(order.shape, dtype=bool)
    tied[:, 1:] = values[:, 1:] <= values[:, :-1] + FEATURE_THRESHOLD
    flagged = np.where(tied, order + tie_flag(dtype), order)
    return xt, np.ascontiguousarray(flagged, dtype=dtype)


def tie_flag(dtype) -> int:
    """The bit :func:`presort` sets on tied entries: above any sample index of that dtype."""
    return 1 << 30 if np.dtype(dtype) == np.int32 else 1 << 62


class ExactGradientBoosting:
    """``GradientBoostingClassifier()`` reproduced on presorted features (see module docstring).

    Parameters are scikit-learn's defaults; ``random_state`` is an int seed of the
    ``RandomState`` whose draws break ties between equally good splits. After :meth:`fit`:
    ``classes_``, ``feature_importances_``, ``n_estimators_`` and ``train_raw_`` (the training
    decision function, (n, T)).
    """

    def __init__(
        self,
        n_estimators: int = 100,
        learning_rate: float = 0.1,
        max_depth: int = 3,
        random_state: int = 0,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.random_state = random_state

    def fit(self, x: np.ndarray, y: np.ndarray, presorted=None) -> ExactGradientBoosting:
        """Fit on codes x (n, d) and labels y (n,); ``presorted`` = :func:`presort` (x) if known."""
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(x):
            raise UntwineError(f"labels must be one per row of x; got {y.shape} for {len(x)} rows")
        if self.max_depth < 1 or self.n_estimators < 1:
            raise UntwineError("need max_depth >= 1 and n_estimators >= 1")
        xt, order = presort(x) if presorted is None else presorted
        self.classes_, encoded = np.unique(y, return_inverse=True)
        num_classes = len(self.classes_)
        if num_classes < 2:
            raise UntwineError("gradient boosting needs at least two classes")
        num_trees = num_classes if num_classes > 2 else 1
        n = len(encoded)
        self._prior = np.bincount(encoded, minlength=num_classes) / n
        raw = np.ascontiguousarray(self._init_raw(n).T)
        rng = np.random.RandomState(self.random_state)
        seeds = np.array(
            [rng.randint(0, RAND_R_MAX) for _ in range(self.n_estimators * num_trees)],
            dtype=np.int64,
        )
        max_nodes = 2 ** (self.max_depth + 1) - 1
        shape = (self.n_estimators, num_trees, max_nodes)
        self._feature = np.full(shape, -2, dtype=np.int64)
        self._threshold = np.full(shape, -2.0)
        self._left = np.full(shape, _LEAF, dtype=np.int64)
        self._right = np.full(shape, _LEAF, dtype=np.int64)
        self._value = np.zeros(shape)
        node_count = np.zeros((self.n_estimators, num_trees), dtype=np.int64)
        tree_importance = np.zeros((self.n_estimators * num_trees, xt.shape[0]))
        _boost(
            xt,
            order,
            encoded.astype(np.int64),
            raw,
            seeds,
            float(self.learning_rate),
            int(self.max_depth),
            self._feature,
            self._threshold,
            self._left,
            self._right,
            self._value,
            node_count,
            tree_importance,
            _U(tie_flag(order.dtype) - 1),
        )
        self.node_count_ = node_count
        self.train_raw_ = np.ascontiguousarray(raw.T)
        self.n_estimators_ = self.n_estimators
        relevant = tree_importance[node_count.reshape(-1) > 1]
        if len(relevant) == 0:
            self.feature_importances_ = np.zeros(xt.shape[0])
        else:
            mean = np.mean(relevant, axis=0, dtype=np.float64)
            self.feature_importances_ = mean / np.sum(mean)
        return self

    def _init_raw(self, n: int) -> np.ndarray:
        """The prior's raw prediction (n, T): logit (binary) or log(p / gmean(p)) (multiclass).

        As ``DummyClassifier(strategy="prior")`` + ``_init_raw_predictions``, computed on the
        same (n, classes) array so every row has scikit-learn's bits: class frequencies
        clipped to [eps, 1 − eps], then the loss's link.
        """
        eps = np.finfo(np.float64).eps
        proba = np.clip(np.ones((n, 1)) * self._prior[None, :], eps, 1 - eps, dtype=np.float64)
        if len(self._prior) == 2:
            return logit(proba[:, 1]).reshape(-1, 1)
        return np.log(proba / gmean(proba, axis=1)[:, None])

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Raw predictions (n, T): the prior's link plus 0.1 × every tree's leaf value."""
        xt = np.ascontiguousarray(np.asarray(x, dtype=np.float32).T)
        raw = np.ascontiguousarray(self._init_raw(xt.shape[1]).T)
        _predict_raw(
            xt,
            raw,
            float(self.learning_rate),
            int(self.max_depth),
            self._feature,
            self._threshold,
            self._left,
            self._right,
            self._value,
        )
        return np.ascontiguousarray(raw.T)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class labels: argmax of the raw predictions (raw ≥ 0 for two classes)."""
        return self.classes_[self._decide(self.decision_function(x))]

    def predict_train(self) -> np.ndarray:
        """Class labels of the training rows, from the fitted decision function."""
        return self.classes_[self._decide(self.train_raw_)]

    @staticmethod
    def _decide(raw: np.ndarray) -> np.ndarray:
        if raw.shape[1] == 1:
            return (raw[:, 0] >= 0).astype(np.int64)
        return np.argmax(raw, axis=1)
