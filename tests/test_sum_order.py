"""The order in which a layer's products are summed changes no byte.

Every layer is a float32 matmul over integer-valued operands (pixzip.intnet `_matmul`, the output layer in
pixzip.softmax), exact in any order because every partial sum stays below 2^24 (checked when a model is
loaded). A GPU's reductions (split-K, tree sums, other tilings) and other CPU libraries sum in other orders
than this machine's; the CPU tests all sum in one. Here the encoder sums in others - the input features
reversed, two uneven partial sums added, chunks of features added one after the other from the last - and
must write the same bytes (format version 3: sharpened, no adaptive stage).
"""
import numpy as np
import pytest
import torch

from pixzip import codec, intnet, registry, softmax
from tests.test_exactness import smooth_image
from tests.test_shipped import sample_crop


def _part(rq: intnet.Requant, rows) -> intnet.Requant:
    """rq with only some of its weight's rows (input features, a slice, or "flip" for all reversed)."""
    weight = rq.weight.flip(0) if rows == "flip" else rq.weight[rows]
    return intnet.Requant(weight.contiguous(), rq.multiplier, rq.offset, rq.wide)


def _reversed(matmul):
    def order(self, a, rq):
        return matmul(self, a.flip(1).contiguous(), _part(rq, "flip"))
    return order


def _split(matmul):
    def order(self, a, rq):  # float32 partial sums, or int32 for a wide layer: exact either way
        k = max(a.shape[1] // 3, 1)
        return matmul(self, a[:, :k].contiguous(), _part(rq, slice(None, k))) + \
            matmul(self, a[:, k:].contiguous(), _part(rq, slice(k, None)))
    return order


def _chunks_from_last(matmul, size=8):
    def order(self, a, rq):
        starts = list(range(0, a.shape[1], size))[::-1]
        acc = matmul(self, a[:, starts[0]:].contiguous(), _part(rq, slice(starts[0], None)))
        for s in starts[1:]:
            acc = acc + matmul(self, a[:, s : s + size].contiguous(), _part(rq, slice(s, s + size)))
        return acc
    return order


ORDERS = {"reversed": _reversed, "split": _split, "chunks-from-last": _chunks_from_last}


def _reversed_output_layer(frequencies):
    """pixzip.softmax.frequencies with each channel group's output-layer features (and weight rows) in
    reverse order: its fused float32 sums run the other way."""
    def reordered(features, groups, weight, bias, table, sharpness=None):
        k = weight.shape[1]
        flipped = features.reshape(len(features), -1, k)[:, :, ::-1].reshape(features.shape)
        return frequencies(np.ascontiguousarray(flipped), groups, np.ascontiguousarray(weight[:, ::-1]), bias,
                           table, sharpness)
    return reordered


@pytest.fixture(params=["tiny_residual", "tiny_rowlstm", "tiny_multiscale", "default"])
def model_and_pixels(request):
    """The default's kind (wide layers), a Row LSTM (its recurrences' matmuls), a multi-scale model (its
    conditioning convolutions), and the shipped default on a crop of the sample photo."""
    if request.param == "default":
        return registry.resolve(None), sample_crop()[:24, :32]
    return request.getfixturevalue(request.param), smooth_image(30, 41, seed=5)


@pytest.mark.parametrize("order", list(ORDERS))
def test_sum_order_changes_no_byte(model_and_pixels, order, monkeypatch):
    model, pixels = model_and_pixels
    reference = codec.compress_pixels(pixels, "RGB", model, tile=16, adapt=False)[0]
    calls = []
    matmul = intnet.BoundNetwork._matmul

    def counted(self, a, rq):
        calls.append(a.shape[1])
        return matmul(self, a, rq)

    monkeypatch.setattr(intnet.BoundNetwork, "_matmul", ORDERS[order](counted))
    monkeypatch.setattr(softmax, "frequencies", _reversed_output_layer(softmax.frequencies))
    assert codec.compress_pixels(pixels, "RGB", model, tile=16, adapt=False)[0] == reference
    assert len(calls) > 1 and max(calls) > 1  # the layers did go through the reordered sums


def test_reordering_is_a_different_sum():
    """The orders really are other orders: on float32 values whose sums round, they differ."""
    torch.manual_seed(0)
    a = torch.randn(64, 200) * 1e4
    rq = intnet.Requant(torch.randn(200, 16), torch.ones(16, dtype=torch.int64), torch.zeros(16, dtype=torch.int64))
    plain = lambda self, a, rq: a @ rq.weight
    reference = plain(None, a, rq)
    for order in ORDERS.values():
        assert not torch.equal(order(plain)(None, a, rq), reference)
