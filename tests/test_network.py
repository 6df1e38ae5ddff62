"""The codec's interface to integer networks (pixzip.network) and the architectures' records (pixzip.registry)."""
import ast
import gc
import importlib.util
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

from pixzip import codec, intlstm, intnet, intscale, network, registry
from pixzip.intformat import MultiScaleConfig
from pixzip.schedule import Layout
from tests.test_exactness import smooth_image

# The coding path: the API, the encoder, the decoder and the stream order.
CODING = ["codec", "encoder", "decoder", "stream"]


def members(protocol: type) -> set[str]:
    """The names a Protocol declares, its bases' included."""
    names = set()
    for cls in protocol.__mro__:
        if cls in (object, network.Protocol) or cls.__name__ in ("Protocol", "Generic"):
            continue
        names |= set(getattr(cls, "__annotations__", {}))
        names |= {k for k, v in vars(cls).items() if not k.startswith("_") and callable(v)}
    return names


def used(tree: ast.AST, variable: str) -> set[str]:
    """Attributes read of a variable (variable.name), and string keys it is indexed by (variable["key"])."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == variable:
            names.add(node.attr)
        if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == variable
                and isinstance(node.slice, ast.Constant)):
            names.add(node.slice.value)
    return names


def test_codec_uses_only_the_interface():
    """Everything the coding path touches of a network (net), a bound network (bn) and a step's state (st)
    is named by pixzip.network."""
    specs = [importlib.util.find_spec(f"pixzip.{name}") for name in CODING]
    tree = ast.Module([ast.parse(Path(spec.origin).read_text()) for spec in specs], [])
    assert used(tree, "net") <= members(network.Network) | members(network.MultiScaleNetwork)
    assert used(tree, "bn") <= members(network.ConditionalBound)
    assert used(tree, "st") <= {"head_output"}
    assert used(tree, "bn") and used(tree, "net")  # the variables are still called so: the check checks


@pytest.mark.parametrize("fixture", ["tiny_rgb", "tiny_rowlstm", "tiny_diagbilstm", "tiny_multiscale_rowlstm"])
def test_networks_have_the_interface(fixture, request):
    net = request.getfixturevalue(fixture).network
    stages = []
    while isinstance(net, network.MultiScaleNetwork):
        stages.append((net.full, network.ConditionalBound))
        net = net.small
    stages.append((net, network.Bound))
    for net, bound_protocol in stages:
        assert isinstance(net, network.Network)
        bn = net.bind(Layout(8, net.reach, 2), torch.device("cpu"), decoder=True)
        assert isinstance(bn, bound_protocol)
        st = bn.state(5)
        assert isinstance(st, network.StepState) and st.head_output is st.o is st["o"]
        assert st.head_output.shape == (5, net.config.hidden)
        pos = torch.from_numpy(bn.layout.flat(np.array([0]), np.array([1]), np.array([2])))
        bn.set_pixels(pos, torch.tensor([[1, 2, 3]], dtype=torch.int32))
        assert bn.x[pos].tolist() == [[1, 2, 3]]


def test_bound_networks_are_freed_without_the_cycle_collector(rgb_model, monkeypatch):
    """A chunk's bound network (its buffers: hundreds of MB for the default's megapixel chunks) is freed when
    the codec is done with it, by reference counting alone: one kept alive by a reference cycle waits for
    the cyclic collector, and a big image's chunks piled up (10 megapixels decoded in 2.4 GB, not 1.3)."""
    alive, init = [], intnet.BoundNetwork.__init__

    def recorded(self, *args, **kwargs):
        init(self, *args, **kwargs)
        alive.append(weakref.ref(self))

    pixels = smooth_image(20, 33, 3)

    def round_trips():
        for adapt in (False, True):
            data, _ = codec.compress_pixels(pixels, "RGB", rgb_model, tile=8, chunk=3, adapt=adapt)
            np.testing.assert_array_equal(codec.decompress_pixels(data, models=rgb_model)[0], pixels)

    round_trips()  # kernels compiled first (numba's first compilation keeps some arguments' frames alive)
    monkeypatch.setattr(intnet.BoundNetwork, "__init__", recorded)
    gc.collect()
    gc.disable()
    try:
        round_trips()
        assert len(alive) > 8 and not [ref for ref in alive if ref() is not None]
    finally:
        gc.enable()


def test_compiled_subpass_is_a_flag():
    """The decoder's compiled sub-pass is for PixelCNN layers: declared per bound class, conditional ones
    inheriting their base's."""
    assert intnet.BoundNetwork.compiled_subpass and intscale.BoundConditionalPixelCNN.compiled_subpass
    for bound in (intlstm.BoundRowLSTM, intlstm.BoundDiagonalBiLSTM, intscale.BoundConditionalRowLSTM,
                  intscale.BoundConditionalDiagonalBiLSTM):
        assert not bound.compiled_subpass


def test_one_record_per_architecture():
    """Each architecture's classes come from its record; the conditional versions are made from the base's."""
    from pixzip import multiscale, train

    for name, arch in registry.ARCHITECTURES.items():
        assert arch.name == name and registry.arch_of(arch.config()) == name == train.arch_of(arch.config())
        assert train.MODELS[name] is arch.model
        if arch.conditional:
            assert issubclass(arch.conditional_network, (arch.network, intscale.IntegerConditional))
            assert issubclass(arch.conditional_network.bound, arch.network.bound)
            assert issubclass(arch.conditional_model, (arch.model, multiscale.Conditional))
            assert arch.conditional_model is multiscale.conditional_model(arch.model)  # one class per base
            assert type(MultiScaleConfig(base=name).base_config()) is arch.config
        else:
            with pytest.raises(ValueError):
                arch.conditional_network
    assert registry.ARCHITECTURES["rowlstm"].conditional_network is intscale.IntegerConditionalRowLSTM
    with pytest.raises(ValueError, match="base must be one of pixelcnn, rowlstm, diagbilstm"):
        MultiScaleConfig(base="multiscale")
